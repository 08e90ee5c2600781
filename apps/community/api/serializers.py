from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.community.models import Reply, Space, Topic


class SpaceSerializer(serializers.ModelSerializer):
    class Meta:
        model = Space
        fields = [
            "id",
            "slug",
            "name",
            "description",
            "visibility",
            "kind_label",
            "topic_count",
            "reply_count",
            "solution_count",
        ]


class AuthorSerializer(serializers.Serializer):
    """A post's author: the member's id and display name."""

    id = serializers.IntegerField()
    name = serializers.CharField()


@extend_schema_field(AuthorSerializer(allow_null=True))
class AuthorField(serializers.Field):
    """A post's author as id and display name, or null for a former member."""

    def to_representation(self, value):
        return {"id": value.pk, "name": value.name}


class TopicSerializer(serializers.ModelSerializer):
    space = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    author = AuthorField(read_only=True)
    tags = serializers.SerializerMethodField()
    is_solved = serializers.SerializerMethodField()

    class Meta:
        model = Topic
        fields = [
            "id",
            "space",
            "kind",
            "title",
            "body",
            "author",
            "tags",
            "reply_count",
            "vote_score",
            "kudos_count",
            "is_solved",
            "accepted_reply",
            "idea_status",
            "is_locked",
            "created_at",
            "last_activity_at",
            "edited_at",
        ]
        read_only_fields = fields

    def get_tags(self, topic: Topic) -> list[str]:
        return [tag.slug for tag in topic.tags.all()]

    def get_is_solved(self, topic: Topic) -> bool:
        return topic.accepted_reply_id is not None


class TopicCreateSerializer(serializers.Serializer):
    space = serializers.SlugField(help_text="The slug of a space the user may read.")
    kind = serializers.ChoiceField(
        choices=Topic.Kind.choices, default=Topic.Kind.QUESTION
    )
    title = serializers.CharField(max_length=200)
    body = serializers.CharField()


class ReplySerializer(serializers.ModelSerializer):
    author = AuthorField(read_only=True)

    class Meta:
        model = Reply
        fields = [
            "id",
            "topic",
            "author",
            "body",
            "quoted_reply",
            "vote_score",
            "kudos_count",
            "created_at",
            "edited_at",
        ]
        read_only_fields = fields


class ReplyCreateSerializer(serializers.Serializer):
    body = serializers.CharField()
    quoted_reply = serializers.IntegerField(required=False, allow_null=True)


class VoteSerializer(serializers.Serializer):
    value = serializers.ChoiceField(choices=[1, -1], default=1)


class SolutionSerializer(serializers.Serializer):
    reply = serializers.IntegerField(help_text="The id of a reply under the question.")
