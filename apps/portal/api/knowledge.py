"""Knowledge base API: articles, their search and feedback, and content gaps.

Articles follow the pages' visibility (`filter_visible_articles`): anonymous
callers read public articles, members the public and members-only ones, and
staff every article. An article the caller may not read answers 404.
Content gaps are for staff only.
"""

import django_filters
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter

from apps.community.search import SearchFilters, log_search_without_results
from apps.community.selectors.access import get_viewer
from apps.portal.models import Article, ContentGap
from apps.portal.selectors.gaps import list_content_gaps
from apps.portal.selectors.knowledge import list_visible_articles, search_articles
from apps.portal.services.gaps import update_content_gap
from apps.portal.services.knowledge import give_article_feedback
from rm6.api import IsStaffUser
from rm6.pagination import CursorPagination


class IdCursorPagination(CursorPagination):
    ordering = "id"
    page_size_query_param = "page_size"
    max_page_size = 100


class ArticleSerializer(serializers.ModelSerializer):
    class Meta:
        model = Article
        fields = [
            "id",
            "slug",
            "title",
            "summary",
            "audience",
            "is_published",
            "published_at",
            "helpful_count",
            "not_helpful_count",
            "updated_at",
        ]


class ArticleDetailSerializer(ArticleSerializer):
    class Meta(ArticleSerializer.Meta):
        fields = [
            *ArticleSerializer.Meta.fields,
            "body",
            "reviewed_on",
            "review_due_on",
        ]


class ArticleHitSerializer(serializers.Serializer):
    slug = serializers.CharField(source="article.slug")
    title = serializers.CharField(source="article.title")
    summary = serializers.CharField(source="article.summary")
    snippet = serializers.CharField(help_text="HTML with matches in <mark> tags.")
    rank = serializers.FloatField(allow_null=True)


class ArticleSearchSerializer(serializers.Serializer):
    query = serializers.CharField()
    page = serializers.IntegerField()
    has_next = serializers.BooleanField()
    results = ArticleHitSerializer(many=True, source="hits")


class FeedbackSerializer(serializers.Serializer):
    helpful = serializers.BooleanField()
    comment = serializers.CharField(
        max_length=1000, required=False, allow_blank=True, default=""
    )


class ArticleViewSet(viewsets.ReadOnlyModelViewSet):
    """Articles the caller may read, in id order; search ranks by relevance."""

    pagination_class = IdCursorPagination
    permission_classes = [AllowAny]
    lookup_field = "slug"
    filter_backends = []

    def get_queryset(self):
        member, is_staff = get_viewer(self.request.user)
        return list_visible_articles(member=member, is_staff=is_staff)

    def get_serializer_class(self):
        if self.action == "retrieve":
            return ArticleDetailSerializer
        return ArticleSerializer

    @extend_schema(
        parameters=[
            OpenApiParameter("q", str, description="Words to search, web syntax."),
            OpenApiParameter("page", int, description="Page number, from 1."),
        ],
        responses=ArticleSearchSerializer,
    )
    @action(detail=False, methods=["get"], pagination_class=None)
    def search(self, request: Request) -> Response:
        """Search the readable articles, best match first, 20 a page."""
        member, is_staff = get_viewer(request.user)
        try:
            page = max(int(request.query_params.get("page", "1")), 1)
        except ValueError:
            page = 1
        result = search_articles(
            query=request.query_params.get("q", ""),
            member=member,
            is_staff=is_staff,
            page=page,
            last_page_when_out_of_range=False,
        )
        if result.query and result.page == 1 and not result.hits:
            # Logged as the community logs them, so the gap grouping sees them.
            log_search_without_results(
                query=result.query, member=member, filters=SearchFilters()
            )
        if result.out_of_range:
            # The same answer as DRF's page-number pagination.
            raise NotFound(
                f"Invalid page {request.query_params.get('page')}: that page "
                "contains no results; use a smaller page number."
            )
        return Response(ArticleSearchSerializer(result).data)

    @extend_schema(request=FeedbackSerializer, responses={200: ArticleSerializer})
    @action(detail=True, methods=["post"], permission_classes=[IsAuthenticated])
    def feedback(self, request: Request, slug=None) -> Response:
        """Answer or change "was this helpful" for the caller's member."""
        article = self.get_object()
        member, _ = get_viewer(request.user)
        if member is None:
            raise PermissionDenied(
                "Only members can rate articles, and this user has no member profile."
            )
        serializer = FeedbackSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        give_article_feedback(
            article=article, member=member, **serializer.validated_data
        )
        article.refresh_from_db()
        return Response(ArticleSerializer(article).data, status=status.HTTP_200_OK)


class ContentGapSerializer(serializers.ModelSerializer):
    topic = serializers.CharField(source="topic.name", default=None, read_only=True)
    article = serializers.CharField(source="article.slug", default=None, read_only=True)

    class Meta:
        model = ContentGap
        fields = [
            "id",
            "key",
            "title",
            "source",
            "topic",
            "sample_queries",
            "occurrences",
            "first_seen_at",
            "last_seen_at",
            "status",
            "owner",
            "due_on",
            "article",
        ]
        read_only_fields = [
            name for name in fields if name not in ("status", "owner", "due_on")
        ]


class ContentGapFilter(django_filters.FilterSet):
    class Meta:
        model = ContentGap
        fields = ["status", "owner", "source"]


class ContentGapViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """The content-gap backlog, for staff; updates set status, owner and due date."""

    serializer_class = ContentGapSerializer
    pagination_class = IdCursorPagination
    permission_classes = [IsStaffUser]
    filterset_class = ContentGapFilter
    http_method_names = ["get", "patch", "head", "options"]

    def get_queryset(self):
        return list_content_gaps()

    def perform_update(self, serializer: ContentGapSerializer) -> None:
        gap = serializer.instance
        data = serializer.validated_data
        owner = data.get("owner", gap.owner)
        update_content_gap(
            gap_id=gap.pk,
            status=data.get("status", gap.status),
            owner_id=owner.pk if owner else None,
            due_on=data.get("due_on", gap.due_on),
        )
        serializer.instance = self.get_queryset().get(pk=gap.pk)


router = SimpleRouter()
router.register("articles", ArticleViewSet, basename="article")
router.register("content-gaps", ContentGapViewSet, basename="content-gap")

urlpatterns = router.urls
