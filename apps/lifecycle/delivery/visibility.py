"""Visibility filters that hide notifications about content a member lost.

Lifecycle cannot import the apps that own the content, so each app registers
a filter per model at start-up (`AppConfig.ready`). A filter takes a member
and the subject ids of that model found on one page of notifications, and
returns the ids the member may still see.
"""

from collections import defaultdict
from collections.abc import Callable, Iterable

from apps.membership.models import Member

VisibilityFilter = Callable[[Member, set[str]], set[str]]

_filters: dict[str, VisibilityFilter] = {}


def register_visibility_filter(model_label: str, function: VisibilityFilter) -> None:
    """Register the filter for one model, named "app_label.model" in lower case."""
    _filters[model_label.lower()] = function


def filter_visible_notifications(*, member: Member, notifications: Iterable) -> list:
    """Return the notifications whose subject the member may still see.

    Notifications without a subject, or about a model with no registered
    filter, are kept. Each subject model on the list costs one filter call,
    so the number of queries does not grow with the number of notifications.
    The notifications must have `subject_type` loaded with select_related.
    """
    notifications = list(notifications)
    ids_by_label: dict[str, set[str]] = defaultdict(set)
    for notification in notifications:
        if notification.subject_type_id is None:
            continue
        subject_type = notification.subject_type
        label = f"{subject_type.app_label}.{subject_type.model}"
        if label in _filters:
            ids_by_label[label].add(notification.subject_id)

    visible = {
        label: _filters[label](member, ids) for label, ids in ids_by_label.items()
    }

    def is_visible(notification) -> bool:
        if notification.subject_type_id is None:
            return True
        subject_type = notification.subject_type
        label = f"{subject_type.app_label}.{subject_type.model}"
        if label not in visible:
            return True
        return notification.subject_id in visible[label]

    return [notification for notification in notifications if is_visible(notification)]
