"""Community API: spaces, topics, replies, votes and accepted solutions.

Every endpoint reads through the same visibility selectors as the pages, so
a private space or a hidden post answers 404 to whoever may not read it.
Lists run a fixed number of queries whatever the page size.
"""

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Prefetch
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from apps.community.api.serializers import (
    ReplyCreateSerializer,
    ReplySerializer,
    SolutionSerializer,
    SpaceSerializer,
    TopicCreateSerializer,
    TopicSerializer,
    VoteSerializer,
)
from apps.community.models import Reply, Tag, Topic
from apps.community.selectors.access import (
    filter_visible_replies,
    filter_visible_topics,
    get_viewer,
    list_visible_spaces,
)
from apps.community.services import post_reply, post_topic
from apps.community.services.engagement import unvote, vote
from apps.community.services.questions import accept_solution, unaccept_solution
from apps.membership.models import Member
from rm6.errors import DomainError
from rm6.pagination import CursorPagination

NO_MEMBER_MESSAGE = (
    "Posting needs a member profile, and this user has none; create a member "
    "for the user first."
)


class IdCursorPagination(CursorPagination):
    """Cursor pagination in id order, which is unique and never changes."""

    ordering = "id"
    page_size_query_param = "page_size"
    max_page_size = 100


class NewestFirstPagination(IdCursorPagination):
    ordering = "-id"


class TrueFalseField(forms.NullBooleanField):
    """A true or false query parameter that rejects any other value.

    Django's NullBooleanField reads an unknown value as "not given", so a
    typo such as solved=yes would silently return every topic.
    """

    widget = forms.TextInput

    def to_python(self, value):
        text = str(value).strip().lower() if value is not None else ""
        if text == "":
            return None
        if text in ("true", "1"):
            return True
        if text in ("false", "0"):
            return False
        raise ValidationError(
            "Invalid value %(value)r: use true or false.",
            code="invalid",
            params={"value": value},
        )


class TrueFalseFilter(django_filters.BooleanFilter):
    field_class = TrueFalseField


class TopicFilter(django_filters.FilterSet):
    space = django_filters.CharFilter(
        field_name="space__slug", help_text="Only topics in the space with this slug."
    )
    kind = django_filters.ChoiceFilter(choices=Topic.Kind.choices)
    solved = TrueFalseFilter(
        field_name="accepted_reply",
        lookup_expr="isnull",
        exclude=True,
        help_text="true: questions with an accepted solution; false: without.",
    )
    tag = django_filters.CharFilter(
        field_name="tags__slug", help_text="Only topics with the tag of this slug."
    )

    class Meta:
        model = Topic
        fields = ["space", "kind", "solved", "tag"]


def _require_member(request: Request) -> Member:
    member, _ = get_viewer(request.user)
    if member is None:
        raise DomainError(NO_MEMBER_MESSAGE, code="forbidden")
    return member


class SpaceViewSet(viewsets.ReadOnlyModelViewSet):
    """The spaces the user may read; private groups only for their members."""

    serializer_class = SpaceSerializer
    pagination_class = IdCursorPagination
    permission_classes = [IsAuthenticated]
    lookup_field = "slug"
    filter_backends = []

    def get_queryset(self):
        member, is_staff = get_viewer(self.request.user)
        return list_visible_spaces(member=member, is_staff=is_staff)


class TopicViewSet(
    mixins.CreateModelMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Topics the user may read, newest first; posting goes through post_topic."""

    serializer_class = TopicSerializer
    pagination_class = NewestFirstPagination
    permission_classes = [IsAuthenticated]
    filterset_class = TopicFilter

    def get_queryset(self):
        member, is_staff = get_viewer(self.request.user)
        topics = Topic.objects.select_related("space", "author__user").prefetch_related(
            Prefetch("tags", queryset=Tag.objects.only("id", "slug"))
        )
        return filter_visible_topics(topics, member, is_staff).distinct()

    @extend_schema(request=TopicCreateSerializer, responses={201: TopicSerializer})
    def create(self, request: Request, *args, **kwargs) -> Response:
        serializer = TopicCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        member = _require_member(request)
        data = serializer.validated_data
        _, is_staff = get_viewer(request.user)
        space = (
            list_visible_spaces(member=member, is_staff=is_staff)
            .filter(slug=data["space"])
            .first()
        )
        if space is None:
            raise NotFound(f"No space {data['space']!r} visible to this user.")

        topic = post_topic(
            author=member,
            space=space,
            title=data["title"],
            body=data["body"],
            kind=data["kind"],
        )
        topic = self.get_queryset().get(pk=topic.pk)
        return Response(TopicSerializer(topic).data, status=status.HTTP_201_CREATED)

    @extend_schema(methods=["GET"], responses=ReplySerializer(many=True), filters=False)
    @extend_schema(
        methods=["POST"],
        request=ReplyCreateSerializer,
        responses={201: ReplySerializer},
    )
    @action(
        detail=True,
        methods=["get", "post"],
        pagination_class=IdCursorPagination,
        filter_backends=[],
    )
    def replies(self, request: Request, pk=None) -> Response:
        """List the topic's visible replies, oldest first, or post a reply."""
        topic = self.get_object()
        member, is_staff = get_viewer(request.user)
        if request.method == "POST":
            serializer = ReplyCreateSerializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            author = _require_member(request)
            reply = post_reply(
                author=author,
                topic=topic,
                body=serializer.validated_data["body"],
                quoted_reply_id=serializer.validated_data.get("quoted_reply"),
            )
            reply = Reply.objects.select_related("author__user").get(pk=reply.pk)
            return Response(ReplySerializer(reply).data, status=status.HTTP_201_CREATED)

        replies = filter_visible_replies(
            Reply.objects.filter(topic=topic).select_related("author__user"),
            member,
            is_staff,
        )
        page = self.paginate_queryset(replies)
        return self.get_paginated_response(ReplySerializer(page, many=True).data)

    @extend_schema(
        methods=["POST"],
        request=VoteSerializer,
        responses={204: OpenApiResponse(description="The vote is recorded.")},
    )
    @extend_schema(
        methods=["DELETE"],
        request=None,
        responses={204: OpenApiResponse(description="The vote is withdrawn.")},
    )
    @action(detail=True, methods=["post", "delete"], url_path="vote")
    def vote(self, request: Request, pk=None) -> Response:
        """Vote the topic up or down, or withdraw the vote."""
        return _vote_response(request, post=self.get_object())

    @extend_schema(
        methods=["POST"],
        request=SolutionSerializer,
        responses={204: OpenApiResponse(description="The reply is the solution.")},
    )
    @extend_schema(
        methods=["DELETE"],
        request=None,
        responses={204: OpenApiResponse(description="No reply is the solution.")},
    )
    @action(detail=True, methods=["post", "delete"], url_path="solution")
    def solution(self, request: Request, pk=None) -> Response:
        """Accept a reply as the question's solution, or clear the solution."""
        topic = self.get_object()
        if request.method == "DELETE":
            unaccept_solution(topic=topic, actor_user=request.user)
            return Response(status=status.HTTP_204_NO_CONTENT)

        serializer = SolutionSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        member, is_staff = get_viewer(request.user)
        replies = filter_visible_replies(
            Reply.objects.filter(topic=topic), member, is_staff
        )
        reply = replies.filter(pk=serializer.validated_data["reply"]).first()
        if reply is None:
            raise NotFound("No such reply under this question.")
        accept_solution(topic=topic, reply=reply, actor_user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ReplyViewSet(mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Single replies the user may read, and votes on them."""

    serializer_class = ReplySerializer
    permission_classes = [IsAuthenticated]
    filter_backends = []

    def get_queryset(self):
        member, is_staff = get_viewer(self.request.user)
        replies = Reply.objects.select_related("author__user", "topic__space")
        return filter_visible_replies(replies, member, is_staff)

    @extend_schema(
        methods=["POST"],
        request=VoteSerializer,
        responses={204: OpenApiResponse(description="The vote is recorded.")},
    )
    @extend_schema(
        methods=["DELETE"],
        request=None,
        responses={204: OpenApiResponse(description="The vote is withdrawn.")},
    )
    @action(detail=True, methods=["post", "delete"], url_path="vote")
    def vote(self, request: Request, pk=None) -> Response:
        """Vote the reply up or down, or withdraw the vote."""
        return _vote_response(request, post=self.get_object())


def _vote_response(request: Request, *, post: Topic | Reply) -> Response:
    member = _require_member(request)
    if request.method == "DELETE":
        unvote(member=member, post=post)
        return Response(status=status.HTTP_204_NO_CONTENT)

    serializer = VoteSerializer(data=request.data)
    serializer.is_valid(raise_exception=True)
    vote(member=member, post=post, value=serializer.validated_data["value"])
    return Response(status=status.HTTP_204_NO_CONTENT)
