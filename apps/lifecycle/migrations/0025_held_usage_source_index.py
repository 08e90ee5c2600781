from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    # Built concurrently, so that the endpoint keeps holding messages while
    # PostgreSQL indexes a large table, which needs a migration outside a
    # transaction.
    atomic = False

    dependencies = [
        ("lifecycle", "0024_webhookendpoint_url_verbose_name"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="heldusageevent",
            index=models.Index(
                condition=models.Q(("status", "held")),
                fields=["source"],
                name="heldusageevent_held_source",
            ),
        ),
    ]
