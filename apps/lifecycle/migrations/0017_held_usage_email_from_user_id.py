from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import migrations

MAX_EMAIL_LENGTH = 254


def fill_email_from_user_id(apps, schema_editor):
    """Give held messages whose userId is an email address that email.

    Messages held from now on get it when they arrive, so an identify of the
    member with that email releases them. Older ones would stay held.
    """
    held_events = apps.get_model("lifecycle", "HeldUsageEvent")
    rows = held_events.objects.filter(email="", user_id__contains="@").only(
        "pk", "user_id"
    )
    for held in rows.iterator(chunk_size=1000):
        email = held.user_id.strip().lower()
        if len(email) > MAX_EMAIL_LENGTH:
            continue
        try:
            validate_email(email)
        except ValidationError:
            continue
        held_events.objects.filter(pk=held.pk).update(email=email)


class Migration(migrations.Migration):
    dependencies = [
        ("lifecycle", "0016_held_usage_received_index"),
    ]

    operations = [
        migrations.RunPython(fill_email_from_user_id, migrations.RunPython.noop),
    ]
