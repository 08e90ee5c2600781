from django.db import models


class OnboardingStep(models.Model):
    """One item of the onboarding checklist every new member sees.

    A step is done for a member once they have an activity event of
    `completion_kind`, so steps complete themselves as members act.
    """

    title = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    completion_kind = models.CharField(
        max_length=100,
        help_text="The activity event kind that completes this step, "
        "for example community.question_posted.",
    )
    url = models.CharField(
        max_length=300, blank=True, default="", help_text="Where the member does it."
    )
    position = models.PositiveSmallIntegerField(default=0)
    is_published = models.BooleanField(default=True)

    class Meta:
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return self.title
