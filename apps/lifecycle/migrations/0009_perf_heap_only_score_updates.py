"""Let score refreshes update rows in place (heap-only tuple updates).

A refresh changes computed_at and events_read_until of every row it scores.
With an index on computed_at, each update wrote a new entry in every index
of the table, on pages spread over the table, and each such page paid a full
page image in the WAL after every checkpoint. Without it, and with 30 % of
each page left free for the new row versions, an update that keeps the band
writes the heap page only. Rows already stored move to the free space as
they are rewritten.
"""

from django.db import migrations

FILLFACTOR = 70
TABLES = ["lifecycle_healthscore", "lifecycle_accounthealthscore"]


class Migration(migrations.Migration):
    dependencies = [
        ("lifecycle", "0008_perf_partial_event_indexes"),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="healthscore",
            name="lifecycle_h_compute_06daaa_idx",
        ),
        *(
            migrations.RunSQL(
                f"ALTER TABLE {table} SET (fillfactor = {FILLFACTOR})",
                reverse_sql=f"ALTER TABLE {table} RESET (fillfactor)",
            )
            for table in TABLES
        ),
    ]
