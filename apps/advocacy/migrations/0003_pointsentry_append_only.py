from django.db import migrations

# The points ledger is append-only: corrections are new entries. The trigger
# makes that hold for every writer, the admin and raw SQL included.
CREATE_TRIGGER = """
CREATE FUNCTION advocacy_pointsentry_reject_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'advocacy_pointsentry is append-only: add a correcting entry instead of % on row %', TG_OP, OLD.id
        USING ERRCODE = 'restrict_violation';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER advocacy_pointsentry_append_only
BEFORE UPDATE OR DELETE ON advocacy_pointsentry
FOR EACH ROW EXECUTE FUNCTION advocacy_pointsentry_reject_change();
"""

DROP_TRIGGER = """
DROP TRIGGER IF EXISTS advocacy_pointsentry_append_only ON advocacy_pointsentry;
DROP FUNCTION IF EXISTS advocacy_pointsentry_reject_change();
"""


class Migration(migrations.Migration):
    dependencies = [("advocacy", "0002_initial")]

    operations = [migrations.RunSQL(CREATE_TRIGGER, DROP_TRIGGER)]
