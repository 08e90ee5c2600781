from django.db import models
from django.urls import reverse

from apps.membership.models import Account, Member


class Space(models.Model):
    """A place for topics about one subject, with its own audience."""

    class Visibility(models.TextChoices):
        PUBLIC = "public", "Public"
        MEMBERS = "members", "Members only"
        ACCOUNT = "account", "One account"
        PRIVATE = "private", "Private group"

    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=120, unique=True)
    description = models.TextField(blank=True, default="")
    visibility = models.CharField(
        max_length=20, choices=Visibility.choices, default=Visibility.MEMBERS
    )
    account = models.ForeignKey(
        Account,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="spaces",
        help_text="For spaces private to one account.",
    )
    kind_label = models.CharField(
        max_length=60,
        blank=True,
        default="",
        help_text="For private groups, what the group is: champion group, "
        "release club.",
    )
    position = models.PositiveSmallIntegerField(default=0)
    topic_count = models.PositiveIntegerField(default=0)
    reply_count = models.PositiveIntegerField(default=0)
    solution_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["position", "name"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(visibility="account", account__isnull=False)
                    | (~models.Q(visibility="account") & models.Q(account__isnull=True))
                ),
                name="space_account_iff_account_visibility",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("community:space", kwargs={"slug": self.slug})


class SpaceMembership(models.Model):
    """A member's place in a private group, as a member or a moderator.

    The object permissions that every page checks are granted from these
    rows by the community services; the rows are the record staff edit.
    """

    class Role(models.TextChoices):
        MEMBER = "member", "Member"
        MODERATOR = "moderator", "Moderator"

    space = models.ForeignKey(
        Space, on_delete=models.CASCADE, related_name="memberships"
    )
    member = models.ForeignKey(
        Member, on_delete=models.CASCADE, related_name="space_memberships"
    )
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["space", "member"], name="spacemembership_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.member} in {self.space}"


class Tag(models.Model):
    name = models.CharField(max_length=50, unique=True)
    slug = models.SlugField(max_length=50, unique=True)
    description = models.CharField(max_length=300, blank=True, default="")
    topic_count = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
