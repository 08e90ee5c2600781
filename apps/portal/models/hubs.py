"""Use-case hubs: curated pages of content for one use case."""

from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.db import models


class UseCaseHub(models.Model):
    """A page that gathers articles, topics, courses and events for one use case."""

    title = models.CharField(max_length=200)
    slug = models.SlugField(max_length=80, unique=True)
    summary = models.CharField(max_length=300, blank=True, default="")
    body = models.TextField(blank=True, default="", help_text="Markdown.")
    is_published = models.BooleanField(default=False)
    position = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["position", "title"]

    def __str__(self) -> str:
        return self.title


class HubItem(models.Model):
    """One piece of content placed on a hub, in order, with an optional note."""

    hub = models.ForeignKey(UseCaseHub, on_delete=models.CASCADE, related_name="items")
    content_type = models.ForeignKey(
        ContentType, on_delete=models.CASCADE, related_name="+"
    )
    object_id = models.PositiveBigIntegerField()
    content = GenericForeignKey("content_type", "object_id")
    note = models.CharField(max_length=300, blank=True, default="")
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["hub", "position", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["hub", "content_type", "object_id"],
                name="portal_hub_item_once",
            )
        ]

    def __str__(self) -> str:
        return f"{self.hub}: {self.content_type.model} {self.object_id}"
