from django.db import migrations

PURPOSES = [
    (
        "marketing_email",
        "Marketing email",
        "News about products, events and programmes by email.",
    ),
    (
        "advocacy_contact",
        "Advocacy contact",
        "Invitations to write reviews, take reference calls or speak at events.",
    ),
    (
        "story_publication",
        "Story publication",
        "Publishing your name, quotes or story on the website and in sales material.",
    ),
    (
        "product_research",
        "Product research",
        "Invitations to interviews, surveys and early-access programmes.",
    ),
]

# One person has one user: emails are unique whatever their case. The index
# lives here because auth_user belongs to Django; empty emails are exempt.
CREATE_EMAIL_INDEX = """
CREATE UNIQUE INDEX IF NOT EXISTS auth_user_email_lower_unique
ON auth_user (lower(email)) WHERE email <> '';
"""
DROP_EMAIL_INDEX = "DROP INDEX IF EXISTS auth_user_email_lower_unique;"


def add_purposes(apps, schema_editor):
    ConsentPurpose = apps.get_model("membership", "ConsentPurpose")
    for position, (key, name, description) in enumerate(PURPOSES):
        ConsentPurpose.objects.get_or_create(
            key=key,
            defaults={"name": name, "description": description, "position": position},
        )


def remove_purposes(apps, schema_editor):
    ConsentPurpose = apps.get_model("membership", "ConsentPurpose")
    ConsentPurpose.objects.filter(key__in=[p[0] for p in PURPOSES]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("membership", "0002_sso_consent_affiliations"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [
        migrations.RunPython(add_purposes, remove_purposes),
        migrations.RunSQL(CREATE_EMAIL_INDEX, DROP_EMAIL_INDEX),
    ]
