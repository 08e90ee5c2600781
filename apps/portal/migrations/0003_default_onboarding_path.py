"""Put the onboarding steps that existed before paths on one default path.

Before paths, every published step formed one checklist for every member.
That checklist becomes the published path "Getting started", for every
role, segment and account, so members keep the same steps and progress.
"""

from django.db import migrations


def attach_steps_to_default_path(apps, schema_editor):
    OnboardingPath = apps.get_model("portal", "OnboardingPath")
    OnboardingStep = apps.get_model("portal", "OnboardingStep")
    orphans = OnboardingStep.objects.filter(path__isnull=True)
    if not orphans.exists():
        return
    path, _ = OnboardingPath.objects.get_or_create(
        slug="getting-started",
        defaults={"title": "Getting started", "is_published": True},
    )
    orphans.update(path=path)


class Migration(migrations.Migration):
    dependencies = [("portal", "0002_portal_models")]

    operations = [
        migrations.RunPython(attach_steps_to_default_path, migrations.RunPython.noop),
    ]
