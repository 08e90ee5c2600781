"""Create the default member and account scorecards as editable rows.

The values are copied here rather than imported from the scoring package,
so that a later change to the built-in defaults never changes what this
migration created. A level that already has an active scorecard is left
alone.
"""

from decimal import Decimal

from django.db import migrations

SCORECARDS = [
    {
        "name": "Default member scorecard",
        "level": "member",
        "description": "Activity in the last 30 days and days since the last "
        "activity, as scored before scorecards could be edited.",
        "measures": [
            {
                "kind": "event_count",
                "label": "Activity",
                "window_days": 30,
                "weight": Decimal("0.6"),
                "zero_at": 0,
                "full_at": 20,
            },
            {
                "kind": "days_since_activity",
                "label": "Recency",
                "window_days": 30,
                "weight": Decimal("0.4"),
                "zero_at": 30,
                "full_at": 3,
            },
        ],
    },
    {
        "name": "Default account scorecard",
        "level": "account",
        "description": "Share of active members, the account's activity and "
        "days since any of its members was last active.",
        "measures": [
            {
                "kind": "active_member_share",
                "label": "Active members",
                "window_days": 30,
                "weight": Decimal("0.5"),
                "zero_at": 0,
                "full_at": 50,
            },
            {
                "kind": "event_count",
                "label": "Activity",
                "window_days": 30,
                "weight": Decimal("0.3"),
                "zero_at": 0,
                "full_at": 200,
            },
            {
                "kind": "days_since_activity",
                "label": "Recency",
                "window_days": 30,
                "weight": Decimal("0.2"),
                "zero_at": 14,
                "full_at": 1,
            },
        ],
    },
]


def create_default_scorecards(apps, schema_editor):
    Scorecard = apps.get_model("lifecycle", "Scorecard")
    ScorecardMeasure = apps.get_model("lifecycle", "ScorecardMeasure")
    for definition in SCORECARDS:
        if Scorecard.objects.filter(level=definition["level"], is_active=True).exists():
            continue
        scorecard = Scorecard.objects.create(
            name=definition["name"],
            level=definition["level"],
            description=definition["description"],
            is_active=True,
        )
        ScorecardMeasure.objects.bulk_create(
            ScorecardMeasure(scorecard=scorecard, position=position, **measure)
            for position, measure in enumerate(definition["measures"])
        )


def delete_default_scorecards(apps, schema_editor):
    Scorecard = apps.get_model("lifecycle", "Scorecard")
    Scorecard.objects.filter(
        name__in=[definition["name"] for definition in SCORECARDS]
    ).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("lifecycle", "0002_engine"),
    ]

    operations = [
        migrations.RunPython(create_default_scorecards, delete_default_scorecards),
    ]
