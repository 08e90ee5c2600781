"""Reads for admin: a play's audience preview."""

from dataclasses import dataclass, field
from datetime import datetime

from django.utils import timezone

from apps.lifecycle.models import Play
from apps.lifecycle.plays.audience import (
    account_subject_key,
    is_held_out,
    list_audience_accounts,
    list_audience_members,
    member_subject_key,
)
from apps.lifecycle.plays.schedules import (
    SCHEDULE_TRIGGERS,
    count_new_schedule_subjects,
)
from apps.lifecycle.plays.triggers import get_trigger_kind, is_trigger_kind_registered

SAMPLE_SIZE = 20


@dataclass(frozen=True)
class PreviewRow:
    """One sampled subject and whether the holdout would keep it untouched."""

    subject: object
    is_held_out: bool


@dataclass(frozen=True)
class PlayPreview:
    """The preview admin shows before a play is activated.

    `audience_size` counts the subjects that match the audience filters now.
    `new_subjects_now`, for schedule triggers only, counts the subjects the
    trigger would enrol if it ran now.
    """

    audience_size: int
    sample: list[PreviewRow]
    new_subjects_now: int | None
    warnings: list[str] = field(default_factory=list)


def _list_warnings(play: Play) -> list[str]:
    warnings = []
    if not play.steps.exists():
        warnings.append("The play has no steps. Add at least one before activating.")
    kind = get_trigger_kind(play)
    if kind and not is_trigger_kind_registered(play):
        warnings.append(
            f"No installed app registers the event kind {kind}, so no event "
            "can trigger this play until one does."
        )
    return warnings


def get_play_preview(*, play: Play, now: datetime | None = None) -> PlayPreview:
    """Return the audience size, a sample of it and, for schedules, who is due."""
    now = now or timezone.now()
    if play.subject_level == Play.SubjectLevel.ACCOUNT:
        audience = list_audience_accounts(play)
        sample = audience.select_related("owner", "health_score").order_by("pk")
        subject_key = account_subject_key
    else:
        audience = list_audience_members(play)
        sample = audience.select_related("user", "account", "health_score").order_by(
            "pk"
        )
        subject_key = member_subject_key

    rows = [
        PreviewRow(
            subject=subject,
            is_held_out=is_held_out(play=play, subject_key=subject_key(subject.pk)),
        )
        for subject in sample[:SAMPLE_SIZE]
    ]
    new_subjects_now = None
    if play.trigger in SCHEDULE_TRIGGERS:
        new_subjects_now = count_new_schedule_subjects(play=play, now=now)
    return PlayPreview(
        audience_size=audience.count(),
        sample=rows,
        new_subjects_now=new_subjects_now,
        warnings=_list_warnings(play),
    )
