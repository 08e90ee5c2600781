import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("portal", "0003_default_onboarding_path")]

    operations = [
        migrations.AlterField(
            model_name="onboardingstep",
            name="path",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE,
                related_name="steps",
                to="portal.onboardingpath",
            ),
        ),
    ]
