"""Give usage ingestion one data source run row per origin.

The shared usage ingestion row is deleted, because its times and error may
come from any Segment source or the event batch API, and moving them to one
origin would show that origin as fresh, or failing, on another's runs. Each
origin writes its own row on its next run. Migrating back merges the
origins' rows into one row.
"""

from django.db import migrations, models

USAGE_INGESTION = "usage_ingestion"


def delete_shared_usage_row(apps, schema_editor):
    DataSourceRun = apps.get_model("membership", "DataSourceRun")
    DataSourceRun.objects.filter(source=USAGE_INGESTION, origin="").delete()


def merge_usage_rows(apps, schema_editor):
    """Replace the origins' rows with one row of the latest success and failure."""
    DataSourceRun = apps.get_model("membership", "DataSourceRun")
    rows = list(DataSourceRun.objects.filter(source=USAGE_INGESTION))
    if not rows:
        return

    successes = [row.last_success_at for row in rows if row.last_success_at]
    failures = [row for row in rows if row.last_failure_at]
    latest_failure = max(failures, key=lambda row: row.last_failure_at, default=None)
    DataSourceRun.objects.filter(source=USAGE_INGESTION).delete()
    DataSourceRun.objects.create(
        source=USAGE_INGESTION,
        origin="",
        last_success_at=max(successes, default=None),
        last_failure_at=latest_failure.last_failure_at if latest_failure else None,
        last_error=latest_failure.last_error if latest_failure else "",
    )


class Migration(migrations.Migration):
    dependencies = [
        ("membership", "0006_data_source_run"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="datasourcerun",
            options={"ordering": ["source", "origin"]},
        ),
        migrations.AddField(
            model_name="datasourcerun",
            name="origin",
            field=models.CharField(
                blank=True,
                default="",
                help_text="Where usage ingestion ran: event_batch_api, or "
                "segment_source: and the Segment source's ID. Empty for the "
                "other sources.",
                max_length=50,
            ),
        ),
        migrations.RemoveConstraint(
            model_name="datasourcerun",
            name="datasourcerun_source_unique",
        ),
        migrations.RunPython(delete_shared_usage_row, merge_usage_rows),
        migrations.AddConstraint(
            model_name="datasourcerun",
            constraint=models.UniqueConstraint(
                fields=("source", "origin"), name="datasourcerun_source_origin_unique"
            ),
        ),
        migrations.AddConstraint(
            model_name="datasourcerun",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(
                        ("source", "usage_ingestion"),
                        (
                            "origin__regex",
                            "^(event_batch_api|segment_source:[1-9][0-9]*)$",
                        ),
                    ),
                    models.Q(
                        models.Q(("source", "usage_ingestion"), _negated=True),
                        ("origin", ""),
                    ),
                    _connector="OR",
                ),
                name="datasourcerun_origin_valid",
            ),
        ),
    ]
