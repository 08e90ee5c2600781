import django.db.models.deletion
from django.db import migrations, models

# Existing attempts are numbered in the order they were submitted, per
# enrolment and quiz, before the column becomes required and unique.
NUMBER_EXISTING_ATTEMPTS = """
    UPDATE portal_quizattempt AS a
    SET number = ranked.number
    FROM (
        SELECT id, row_number() OVER (
            PARTITION BY enrolment_id, quiz_id ORDER BY submitted_at, id
        ) AS number
        FROM portal_quizattempt
    ) AS ranked
    WHERE a.id = ranked.id
"""


class Migration(migrations.Migration):
    dependencies = [
        ("portal", "0004_onboarding_step_path_required"),
    ]

    operations = [
        migrations.AddField(
            model_name="quizattempt",
            name="number",
            field=models.PositiveSmallIntegerField(null=True),
        ),
        migrations.RunSQL(NUMBER_EXISTING_ATTEMPTS, migrations.RunSQL.noop),
        migrations.AlterField(
            model_name="quizattempt",
            name="number",
            field=models.PositiveSmallIntegerField(
                help_text="1 for the member's first attempt at this quiz, then 2, 3 and so on."
            ),
        ),
        migrations.AddConstraint(
            model_name="quizattempt",
            constraint=models.UniqueConstraint(
                fields=("enrolment", "quiz", "number"),
                name="portal_quiz_attempt_number_once",
            ),
        ),
        migrations.AddField(
            model_name="courseenrolment",
            name="quiz_attempts_reset_at",
            field=models.DateTimeField(
                blank=True,
                help_text="Quiz attempts before this time no longer count towards the quiz's maximum; staff set it to give the member new attempts.",
                null=True,
            ),
        ),
        migrations.AddField(
            model_name="membercertificate",
            name="expiry_recorded_at",
            field=models.DateTimeField(
                blank=True,
                help_text="When the expiry task handled this certificate after it lapsed.",
                null=True,
            ),
        ),
        migrations.AlterField(
            model_name="membercertificate",
            name="attempt",
            field=models.ForeignKey(
                blank=True,
                help_text="The passing attempt that earned it; one certificate of each certification per attempt.",
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="certificates",
                to="portal.quizattempt",
            ),
        ),
        migrations.AddConstraint(
            model_name="membercertificate",
            constraint=models.UniqueConstraint(
                fields=("attempt", "certification"),
                name="portal_certificate_once_per_attempt",
            ),
        ),
    ]
