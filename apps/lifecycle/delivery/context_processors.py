from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from apps.lifecycle.delivery.notifications import count_unread_notifications


def unread_notifications(request: HttpRequest) -> dict:
    """Add `unread_notification_count` for the navigation badge.

    The count is lazy: it costs one query on a page that shows it and none
    on a page that does not, or for an anonymous visitor.
    """
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"unread_notification_count": 0}
    user_id = user.pk
    return {
        "unread_notification_count": SimpleLazyObject(
            lambda: count_unread_notifications(user_id=user_id)
        )
    }
