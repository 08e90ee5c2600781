from apps.lifecycle.models.delivery import (
    CsmTask,
    Notification,
    WebhookDelivery,
    WebhookEndpoint,
)
from apps.lifecycle.models.events import ActivityEvent
from apps.lifecycle.models.ingestion import (
    HeldUsageEvent,
    SegmentIdentity,
    SegmentSource,
)
from apps.lifecycle.models.plays import (
    Enrolment,
    FatigueCap,
    Play,
    PlayStep,
    StepRun,
    Touch,
)
from apps.lifecycle.models.scores import (
    AccountHealthScore,
    AccountHealthScoreSnapshot,
    HealthBand,
    HealthScore,
    HealthScoreSnapshot,
    Scorecard,
    ScorecardMeasure,
)

__all__ = [
    "AccountHealthScore",
    "AccountHealthScoreSnapshot",
    "ActivityEvent",
    "CsmTask",
    "Enrolment",
    "FatigueCap",
    "HealthBand",
    "HealthScore",
    "HealthScoreSnapshot",
    "HeldUsageEvent",
    "Notification",
    "Play",
    "PlayStep",
    "Scorecard",
    "ScorecardMeasure",
    "SegmentIdentity",
    "SegmentSource",
    "StepRun",
    "Touch",
    "WebhookDelivery",
    "WebhookEndpoint",
]
