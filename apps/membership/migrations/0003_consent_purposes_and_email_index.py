from django.db import migrations

# One person has one user: emails are unique whatever their case. The index
# lives here because auth_user belongs to Django; empty emails are exempt.
# The standard consent purposes are created by apps.membership.defaults after
# every migrate, not here, so that a flushed test database gets them back.
CREATE_EMAIL_INDEX = """
CREATE UNIQUE INDEX IF NOT EXISTS auth_user_email_lower_unique
ON auth_user (lower(email)) WHERE email <> '';
"""
DROP_EMAIL_INDEX = "DROP INDEX IF EXISTS auth_user_email_lower_unique;"


class Migration(migrations.Migration):
    dependencies = [
        ("membership", "0002_sso_consent_affiliations"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [migrations.RunSQL(CREATE_EMAIL_INDEX, DROP_EMAIL_INDEX)]
