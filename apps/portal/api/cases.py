"""Support cases API under /api/v1/portal/cases/, and the escalation of a
community question to a case under /api/v1/portal/questions/.

Every case endpoint starts from `visible_cases`, the same rule as the pages:
a case the user may not see gets a 404 response. Members never receive
internal notes, their files or the SLA fields, which are staff's.
"""

import django_filters
from django.http import FileResponse
from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import DefaultRouter
from rest_framework.views import APIView

from apps.community.models import Topic
from apps.community.selectors import access_topic
from apps.membership.selectors import get_member_for_user
from apps.portal.models import Case, CaseAttachment, CaseMessage, CaseTopic
from apps.portal.selectors.cases import (
    access_case_attachment,
    list_case_attachments,
    list_case_messages,
    visible_cases,
)
from apps.portal.services import cases as case_services
from rm6.errors import DomainError
from rm6.pagination import CursorPagination

NO_MEMBER_MESSAGE = (
    "Filing a case needs a member profile, and this user has none; create a "
    "member for the user first."
)


class CasePagination(CursorPagination):
    ordering = "-id"
    page_size_query_param = "page_size"
    max_page_size = 100


class CaseAttachmentSerializer(serializers.ModelSerializer):
    name = serializers.CharField(source="original_name")
    url = serializers.SerializerMethodField()

    class Meta:
        model = CaseAttachment
        fields = ["id", "name", "content_type", "size", "created_at", "url"]

    def get_url(self, attachment: CaseAttachment) -> str:
        return f"/api/v1/portal/cases/{attachment.case_id}/attachments/{attachment.pk}/"


class CaseMessageSerializer(serializers.ModelSerializer):
    is_from_staff = serializers.SerializerMethodField()
    attachments = CaseAttachmentSerializer(many=True, read_only=True)

    class Meta:
        model = CaseMessage
        fields = [
            "id",
            "visibility",
            "body",
            "is_from_staff",
            "created_at",
            "attachments",
        ]

    def get_is_from_staff(self, message: CaseMessage) -> bool:
        return bool(message.author and message.author.is_staff)


class CaseSerializer(serializers.ModelSerializer):
    topic = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = Case
        fields = [
            "id",
            "subject",
            "body",
            "status",
            "priority",
            "topic",
            "member",
            "account",
            "source_topic",
            "created_at",
            "updated_at",
            "first_responded_at",
            "solved_at",
            "closed_at",
            "csat_score",
            "csat_comment",
            "csat_rated_at",
        ]
        read_only_fields = fields


class StaffCaseSerializer(CaseSerializer):
    """A case with the SLA and assignment fields that only staff see."""

    class Meta(CaseSerializer.Meta):
        fields = [
            *CaseSerializer.Meta.fields,
            "assignee",
            "first_response_due_at",
            "resolution_due_at",
            "resolution_minutes_left",
            "first_response_breached_at",
            "resolution_breached_at",
            "escalated_at",
        ]
        read_only_fields = fields


class CaseCreateSerializer(serializers.Serializer):
    subject = serializers.CharField()
    body = serializers.CharField()
    priority = serializers.ChoiceField(
        choices=Case.Priority.choices, default=Case.Priority.NORMAL
    )
    topic = serializers.SlugRelatedField(
        slug_field="slug",
        queryset=CaseTopic.objects.all(),
        required=False,
        allow_null=True,
    )
    attempt = serializers.IntegerField(
        required=False,
        allow_null=True,
        help_text="The case attempt the form started, for deflection.",
    )
    attachments = serializers.ListField(
        child=serializers.FileField(), required=False, default=list
    )


class CaseReplyCreateSerializer(serializers.Serializer):
    body = serializers.CharField()
    visibility = serializers.ChoiceField(
        choices=CaseMessage.Visibility.choices,
        default=CaseMessage.Visibility.PUBLIC,
        help_text="internal is for staff only.",
    )
    attachments = serializers.ListField(
        child=serializers.FileField(), required=False, default=list
    )


class QuestionEscalationSerializer(serializers.Serializer):
    subject = serializers.CharField(
        required=False, help_text="The case subject; the question's title if left out."
    )
    body = serializers.CharField(
        required=False,
        help_text="The case description. If left out, the question's body, cut "
        "with an ellipsis to fit the case limit, and a link to the question.",
    )
    priority = serializers.ChoiceField(
        choices=Case.Priority.choices, default=Case.Priority.NORMAL
    )
    topic = serializers.SlugRelatedField(
        slug_field="slug",
        queryset=CaseTopic.objects.all(),
        required=False,
        allow_null=True,
        help_text="The slug of the support case topic.",
    )


class CaseAttachmentUploadSerializer(serializers.Serializer):
    attachments = serializers.ListField(child=serializers.FileField())


class CaseStatusSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=Case.Status.choices)


class CaseRatingSerializer(serializers.Serializer):
    score = serializers.IntegerField(min_value=1, max_value=5)
    comment = serializers.CharField(required=False, allow_blank=True, default="")


class CaseFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=Case.Status.choices)
    priority = django_filters.ChoiceFilter(choices=Case.Priority.choices)
    topic = django_filters.CharFilter(
        field_name="topic__slug", help_text="Only cases of the topic with this slug."
    )

    class Meta:
        model = Case
        fields = ["status", "priority", "topic"]


class CaseViewSet(
    mixins.CreateModelMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Cases the user may see, newest first; filing goes through file_case."""

    pagination_class = CasePagination
    permission_classes = [IsAuthenticated]
    filterset_class = CaseFilter
    parser_classes = [JSONParser, MultiPartParser, FormParser]

    def get_queryset(self):
        return visible_cases(self.request.user).select_related("topic")

    def get_serializer_class(self):
        if getattr(self, "swagger_fake_view", False) or self.request.user.is_staff:
            return StaffCaseSerializer
        return CaseSerializer

    def _get_case(self) -> Case:
        try:
            return (
                self.get_queryset()
                .select_related("member__user")
                .get(pk=self.kwargs["pk"])
            )
        except (Case.DoesNotExist, ValueError):
            raise NotFound("Case not found.") from None

    def _case_response(self, case: Case, *, code: int = status.HTTP_200_OK):
        serializer = self.get_serializer_class()(
            case, context=self.get_serializer_context()
        )
        return Response(serializer.data, status=code)

    @extend_schema(
        request=CaseCreateSerializer,
        responses={
            201: OpenApiResponse(CaseSerializer, description="The case was filed."),
            200: OpenApiResponse(
                CaseSerializer,
                description="The case filed earlier from the same attempt.",
            ),
            400: OpenApiResponse(description="Invalid field; the body names it."),
            403: OpenApiResponse(
                description="The user has no member profile, or the member no "
                "customer account yet; the detail names the reason."
            ),
        },
        description="File a case. A retry with the same attempt returns the "
        "case filed from it with 200 instead of filing a second one.",
    )
    def create(self, request: Request) -> Response:
        member = get_member_for_user(request.user)
        if member is None:
            raise PermissionDenied(NO_MEMBER_MESSAGE)
        serializer = CaseCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        uploads = request.FILES.getlist("attachments") or data["attachments"]
        try:
            case, created = case_services.get_or_file_case(
                member=member,
                subject=data["subject"],
                body=data["body"],
                priority=data["priority"],
                topic=data.get("topic"),
                uploads=uploads,
                attempt_id=data.get("attempt"),
            )
        except DomainError as error:
            if error.code == "forbidden":
                raise PermissionDenied(error.message) from None
            raise
        code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
        return self._case_response(case, code=code)

    @extend_schema(
        methods=["GET"],
        responses={200: CaseMessageSerializer(many=True)},
        description="The case's thread, oldest first; internal notes for staff only.",
    )
    @extend_schema(
        methods=["POST"],
        request=CaseReplyCreateSerializer,
        responses={201: CaseMessageSerializer},
        description="Reply on the case; staff may add internal notes.",
    )
    @action(detail=True, methods=["get", "post"], pagination_class=None)
    def messages(self, request: Request, pk: str) -> Response:
        case = self._get_case()
        if request.method == "GET":
            thread = list_case_messages(case=case, user=request.user)
            return Response(CaseMessageSerializer(thread, many=True).data)
        serializer = CaseReplyCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        message = case_services.reply_to_case(
            case=case,
            author=request.user,
            body=data["body"],
            is_internal=data["visibility"] == CaseMessage.Visibility.INTERNAL,
            uploads=request.FILES.getlist("attachments") or data["attachments"],
        )
        return Response(
            CaseMessageSerializer(message).data, status=status.HTTP_201_CREATED
        )

    @extend_schema(
        methods=["GET"],
        responses={200: CaseAttachmentSerializer(many=True)},
        description="The case's files; those on internal notes for staff only.",
    )
    @extend_schema(
        methods=["POST"],
        request={"multipart/form-data": CaseAttachmentUploadSerializer},
        responses={201: CaseAttachmentSerializer(many=True)},
        description="Add files to the case, within the type and size limits.",
    )
    @action(detail=True, methods=["get", "post"], pagination_class=None)
    def attachments(self, request: Request, pk: str) -> Response:
        case = self._get_case()
        if request.method == "GET":
            files = list_case_attachments(case=case, user=request.user)
            return Response(CaseAttachmentSerializer(files, many=True).data)
        created = case_services.add_case_attachments(
            case=case,
            uploaded_by=request.user,
            uploads=request.FILES.getlist("attachments"),
        )
        return Response(
            CaseAttachmentSerializer(created, many=True).data,
            status=status.HTTP_201_CREATED,
        )

    @extend_schema(
        responses={(200, "application/octet-stream"): OpenApiTypes.BINARY},
        description="Download one file, as an attachment.",
    )
    @action(
        detail=True,
        methods=["get"],
        url_path=r"attachments/(?P<attachment_pk>[0-9]+)",
        pagination_class=None,
    )
    def attachment_file(self, request: Request, pk: str, attachment_pk: str):
        try:
            attachment = access_case_attachment(
                user=request.user, case_id=int(pk), attachment_id=int(attachment_pk)
            )
            handle = attachment.file.open("rb")
        except (CaseAttachment.DoesNotExist, FileNotFoundError, ValueError):
            raise NotFound("File not found.") from None
        response = FileResponse(
            handle,
            as_attachment=True,
            filename=attachment.original_name,
            content_type=attachment.content_type,
        )
        response["X-Content-Type-Options"] = "nosniff"
        response["Content-Security-Policy"] = "default-src 'none'; sandbox"
        return response

    @extend_schema(
        request=CaseStatusSerializer,
        responses={
            200: StaffCaseSerializer,
            400: OpenApiResponse(description="Invalid"),
        },
        description="Change the status. Staff follow the allowed transitions; "
        "a member may only mark their case solved.",
    )
    @action(detail=True, methods=["post"], url_path="status")
    def change_status(self, request: Request, pk: str) -> Response:
        case = self._get_case()
        serializer = CaseStatusSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        case = case_services.change_case_status(
            case=case, status=serializer.validated_data["status"], actor=request.user
        )
        return self._case_response(case)

    @extend_schema(
        request=CaseRatingSerializer,
        responses={200: CaseSerializer},
        description="Rate the support, 1 to 5, once, by the member who filed it.",
    )
    @action(detail=True, methods=["post"])
    def rating(self, request: Request, pk: str) -> Response:
        case = self._get_case()
        serializer = CaseRatingSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        case = case_services.rate_case(
            case=case,
            member=get_member_for_user(request.user),
            score=serializer.validated_data["score"],
            comment=serializer.validated_data["comment"],
        )
        return self._case_response(case)


class QuestionEscalationView(APIView):
    """Escalate the caller's unanswered community question to a support case.

    The same rules as the topic page's "Ask support": only the question's
    author may, once it has had no reply from anyone else for the escalation
    delay, and a question has one case at most. A repeated request returns
    that case with 200 instead of filing a second one.
    """

    permission_classes = [IsAuthenticated]

    @extend_schema(
        request=QuestionEscalationSerializer,
        responses={
            201: OpenApiResponse(CaseSerializer, description="The case was filed."),
            200: OpenApiResponse(
                CaseSerializer, description="The case filed earlier for the question."
            ),
            400: OpenApiResponse(description="Invalid subject, body or priority."),
            401: OpenApiResponse(description="Not signed in."),
            403: OpenApiResponse(
                description="Not the question's author, the question has a reply, "
                "or it is still within the escalation delay; the detail names "
                "the reason."
            ),
            404: OpenApiResponse(description="No question the caller may read."),
        },
        description="Turn an unanswered community question into a support case, "
        "once. Safe to retry.",
    )
    def post(self, request: Request, pk: int) -> Response:
        member = get_member_for_user(request.user)
        if member is None:
            raise PermissionDenied(NO_MEMBER_MESSAGE)
        try:
            question = access_topic(
                pk=pk, member=member, is_staff=request.user.is_staff
            )
        except Topic.DoesNotExist:
            raise NotFound(f"No question {pk} that you may read.") from None
        serializer = QuestionEscalationSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data

        url = request.build_absolute_uri(question.get_absolute_url())
        subject_max_length = Case._meta.get_field("subject").max_length
        try:
            case, created = case_services.escalate_question(
                member=member,
                topic=question,
                subject=data.get("subject", question.title[:subject_max_length]),
                body=data.get(
                    "body",
                    case_services.build_escalation_body(
                        question_body=question.body, url=url
                    ),
                ),
                priority=data["priority"],
                case_topic=data.get("topic"),
            )
        except DomainError as error:
            if error.code == "forbidden":
                raise PermissionDenied(error.message) from None
            raise

        code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
        return Response(CaseSerializer(case).data, status=code)


router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("cases", CaseViewSet, basename="case")

urlpatterns = [
    *router.urls,
    path(
        "questions/<int:pk>/escalate/",
        QuestionEscalationView.as_view(),
        name="question_escalate",
    ),
]
