"""Portal API for onboarding paths, progress and use-case hubs.

Every endpoint uses the selectors the pages use, so a member sees only the
paths assigned to them, account progress is open to staff (the account's
CSM among them) and to that account's admins, and a hub lists only the
items the caller may open.
"""

from django.core.paginator import Paginator
from django.urls import path
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.membership.models import Account, Member
from apps.membership.selectors import get_member_for_user
from apps.portal.models import OnboardingPath, OnboardingStep, UseCaseHub
from apps.portal.selectors.hubs import access_hub, list_hub_entries, list_visible_hubs
from apps.portal.selectors.onboarding import (
    PathProgress,
    access_account_progress,
    access_member_path,
    access_member_step,
    get_member_of_account,
    list_account_members_for_progress,
    list_account_path_summaries,
    list_member_path_progress,
    list_member_paths,
    list_member_progress_rows,
    list_path_progress,
)
from apps.portal.services.hubs import record_hub_view
from apps.portal.services.onboarding import (
    mark_step_done,
    mark_step_undone,
    sync_member_progress,
)
from rm6.pagination import CursorPagination

NO_MEMBER_MESSAGE = (
    "Onboarding paths belong to members, and this user has none; staff read "
    "progress through the account endpoints."
)
MEMBERS_PER_PAGE = 50


# Serializers -------------------------------------------------------------------


class StepStatusSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="step.pk")
    title = serializers.CharField(source="step.title")
    description = serializers.CharField(source="step.description")
    completion = serializers.CharField(source="step.completion")
    completion_kind = serializers.CharField(source="step.completion_kind")
    url = serializers.CharField(source="step.url")
    position = serializers.IntegerField(source="step.position")
    is_done = serializers.BooleanField()
    completed_at = serializers.DateTimeField(allow_null=True)
    how = serializers.CharField(source="progress.how", allow_null=True, default=None)


class PathProgressSerializer(serializers.Serializer):
    slug = serializers.CharField(source="path.slug")
    title = serializers.CharField(source="path.title")
    description = serializers.CharField(source="path.description")
    total = serializers.IntegerField()
    done = serializers.IntegerField(source="done_count")
    percent = serializers.IntegerField()
    completed_at = serializers.DateTimeField(
        source="completion.completed_at", allow_null=True, default=None
    )
    steps = StepStatusSerializer(many=True)


class StepDoneSerializer(serializers.Serializer):
    step = serializers.IntegerField()
    is_done = serializers.BooleanField()
    path = PathProgressSerializer()


class AccountPathSummarySerializer(serializers.Serializer):
    slug = serializers.CharField(source="path.slug")
    title = serializers.CharField(source="path.title")
    assigned = serializers.IntegerField()
    completed = serializers.IntegerField()
    mean_percent = serializers.IntegerField()


class MemberPathCellSerializer(serializers.Serializer):
    path = serializers.CharField()
    steps = serializers.IntegerField()
    done = serializers.IntegerField()
    percent = serializers.IntegerField()
    completed_at = serializers.DateTimeField(allow_null=True)


class MemberProgressSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    role = serializers.CharField()
    paths = MemberPathCellSerializer(many=True)


class AccountProgressSerializer(serializers.Serializer):
    account = serializers.IntegerField()
    name = serializers.CharField()
    paths = AccountPathSummarySerializer(many=True)
    members = MemberProgressSerializer(many=True)
    page = serializers.IntegerField()
    pages = serializers.IntegerField()
    member_count = serializers.IntegerField()


class HubSerializer(serializers.ModelSerializer):
    class Meta:
        model = UseCaseHub
        fields = ["slug", "title", "summary", "is_published", "position"]


class HubEntrySerializer(serializers.Serializer):
    kind = serializers.CharField()
    id = serializers.IntegerField(source="content.pk")
    title = serializers.CharField()
    summary = serializers.CharField()
    note = serializers.CharField(source="item.note")
    url = serializers.CharField()


class HubDetailSerializer(HubSerializer):
    body = serializers.CharField()
    items = HubEntrySerializer(many=True, source="entries")

    class Meta(HubSerializer.Meta):
        fields = [*HubSerializer.Meta.fields, "body", "items"]


# Views -------------------------------------------------------------------------


def _require_member(request: Request) -> Member:
    member = get_member_for_user(request.user)
    if member is None:
        raise PermissionDenied(NO_MEMBER_MESSAGE)
    return member


class PathPagination(CursorPagination):
    """Cursor pagination in the paths' own order, as the pages list them."""

    ordering = ("position", "id")
    page_size_query_param = "page_size"
    max_page_size = 100


class MyPathListView(GenericAPIView):
    """The paths assigned to the caller, each with its steps and progress."""

    # drf-spectacular reads the model from it. The pages come from
    # list_member_paths.
    queryset = OnboardingPath.objects.none()
    pagination_class = PathPagination
    serializer_class = PathProgressSerializer

    @extend_schema(responses=PathProgressSerializer(many=True))
    def get(self, request: Request) -> Response:
        member = _require_member(request)
        sync_member_progress(member=member)
        page = self.paginate_queryset(list_member_paths(member=member))
        progress = list_path_progress(member=member, paths=page)
        return self.get_paginated_response(
            PathProgressSerializer(progress, many=True).data
        )


class MyPathDetailView(APIView):
    @extend_schema(responses=PathProgressSerializer)
    def get(self, request: Request, slug: str) -> Response:
        member = _require_member(request)
        try:
            onboarding_path = access_member_path(member=member, slug=slug)
        except OnboardingPath.DoesNotExist:
            raise NotFound(f"No onboarding path {slug!r} assigned to you.") from None
        sync_member_progress(member=member)
        progress = list_member_path_progress(member=member, path=onboarding_path)
        if not progress:
            raise NotFound(f"The onboarding path {slug!r} has no published steps.")
        return Response(PathProgressSerializer(progress[0]).data)


class StepDoneView(APIView):
    """Mark a manual step done (PUT) or not done (DELETE) for the caller.

    Both are idempotent. Steps done by an event or a visit get a 400 response,
    because the next sync would change them back.
    """

    def _step(self, request: Request, pk: int) -> tuple[Member, OnboardingStep]:
        member = _require_member(request)
        try:
            return member, access_member_step(member=member, step_id=pk)
        except OnboardingStep.DoesNotExist:
            raise NotFound(f"No onboarding step {pk} assigned to you.") from None

    def _respond(self, member: Member, step: OnboardingStep, code: int) -> Response:
        progress: list[PathProgress] = list_member_path_progress(
            member=member, path=step.path
        )
        is_done = any(s.is_done for p in progress for s in p.steps if s.step == step)
        data = {"step": step.pk, "is_done": is_done, "path": progress[0]}
        return Response(StepDoneSerializer(data).data, status=code)

    @extend_schema(request=None, responses={200: StepDoneSerializer})
    def put(self, request: Request, pk: int) -> Response:
        member, step = self._step(request, pk)
        mark_step_done(member=member, step=step)
        return self._respond(member, step, status.HTTP_200_OK)

    @extend_schema(request=None, responses={200: StepDoneSerializer})
    def delete(self, request: Request, pk: int) -> Response:
        member, step = self._step(request, pk)
        mark_step_undone(member=member, step=step)
        return self._respond(member, step, status.HTTP_200_OK)


def _access_account(request: Request, pk: int) -> Account:
    try:
        return access_account_progress(user=request.user, account_id=pk)
    except Account.DoesNotExist:
        raise NotFound(f"No account {pk} whose progress you may see.") from None


class AccountProgressView(APIView):
    """An account's progress per path, and per member one page at a time."""

    @extend_schema(
        parameters=[OpenApiParameter("page", int, description="Page of members.")],
        responses={200: AccountProgressSerializer, 404: OpenApiResponse()},
    )
    def get(self, request: Request, pk: int) -> Response:
        account = _access_account(request, pk)
        summaries = list_account_path_summaries(account=account)
        slugs = {summary.path.pk: summary.path.slug for summary in summaries}
        page = Paginator(
            list_account_members_for_progress(account=account), MEMBERS_PER_PAGE
        ).get_page(request.query_params.get("page"))
        rows = list_member_progress_rows(members=list(page.object_list))
        data = {
            "account": account.pk,
            "name": account.name,
            "paths": summaries,
            "members": [
                {
                    "id": row.member.pk,
                    "name": row.member.name,
                    "role": row.member.role,
                    "paths": [
                        {
                            "path": slugs.get(cell.path_id, ""),
                            "steps": cell.steps,
                            "done": cell.done,
                            "percent": cell.percent,
                            "completed_at": cell.completed_at,
                        }
                        for cell in row.cells.values()
                    ],
                }
                for row in rows
            ],
            "page": page.number,
            "pages": page.paginator.num_pages,
            "member_count": page.paginator.count,
        }
        return Response(AccountProgressSerializer(data).data)


class AccountMemberPathsView(GenericAPIView):
    """One member's paths and progress, for users who may see the account's."""

    # drf-spectacular reads the model from it. The pages come from
    # list_member_paths.
    queryset = OnboardingPath.objects.none()
    pagination_class = PathPagination
    serializer_class = PathProgressSerializer

    @extend_schema(responses=PathProgressSerializer(many=True))
    def get(self, request: Request, pk: int, member_id: int) -> Response:
        account = _access_account(request, pk)
        try:
            member = get_member_of_account(account=account, member_id=member_id)
        except Member.DoesNotExist:
            raise NotFound(f"No active member {member_id} in this account.") from None
        page = self.paginate_queryset(list_member_paths(member=member))
        progress = list_path_progress(member=member, paths=page)
        return self.get_paginated_response(
            PathProgressSerializer(progress, many=True).data
        )


class HubPagination(CursorPagination):
    ordering = ("position", "id")
    page_size = 50


class HubListView(APIView):
    """Published hubs, and drafts for staff."""

    @extend_schema(responses=HubSerializer(many=True))
    def get(self, request: Request) -> Response:
        paginator = HubPagination()
        hubs = list_visible_hubs(is_staff=request.user.is_staff)
        page = paginator.paginate_queryset(hubs, request, view=self)
        return paginator.get_paginated_response(HubSerializer(page, many=True).data)


class HubDetailView(APIView):
    """One hub with the items the caller may open, in the hub's order."""

    @extend_schema(responses=HubDetailSerializer)
    def get(self, request: Request, slug: str) -> Response:
        is_staff = request.user.is_staff
        try:
            hub = access_hub(slug=slug, is_staff=is_staff)
        except UseCaseHub.DoesNotExist:
            raise NotFound(f"No hub {slug!r}.") from None
        member = get_member_for_user(request.user)
        hub.entries = list_hub_entries(hub=hub, member=member, is_staff=is_staff)
        if member is not None:
            record_hub_view(member=member, hub=hub)
        return Response(HubDetailSerializer(hub).data)


urlpatterns = [
    path("onboarding/paths/", MyPathListView.as_view(), name="onboarding_paths"),
    path(
        "onboarding/paths/<slug:slug>/",
        MyPathDetailView.as_view(),
        name="onboarding_path",
    ),
    path(
        "onboarding/steps/<int:pk>/done/",
        StepDoneView.as_view(),
        name="onboarding_step_done",
    ),
    path(
        "onboarding/accounts/<int:pk>/",
        AccountProgressView.as_view(),
        name="onboarding_account",
    ),
    path(
        "onboarding/accounts/<int:pk>/members/<int:member_id>/",
        AccountMemberPathsView.as_view(),
        name="onboarding_account_member",
    ),
    path("hubs/", HubListView.as_view(), name="hubs"),
    path("hubs/<slug:slug>/", HubDetailView.as_view(), name="hub"),
]
