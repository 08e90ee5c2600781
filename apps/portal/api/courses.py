"""Courses API: the catalogue with my progress, enrolment, lessons, quizzes
and certificates, under /api/v1/portal/.

Permissions match the pages: signed-in users read published courses, members
write their own progress, and only certificate verification is public.
"""

import uuid

from django.urls import path
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter
from rest_framework.views import APIView

from apps.membership.models import Member
from apps.membership.selectors import get_member_for_user
from apps.portal.models import (
    Course,
    CourseEnrolment,
    Lesson,
    MemberCertificate,
    Quiz,
)
from apps.portal.selectors.courses import (
    Progress,
    access_course,
    access_lesson,
    get_certificate_by_code,
    get_certificate_status,
    get_enrolment,
    list_member_certificates,
    list_member_enrolments,
    list_published_courses,
)
from apps.portal.services.courses import complete_lesson, enrol_member, submit_quiz
from rm6.errors import DomainError
from rm6.pagination import CursorPagination

NO_MEMBER_MESSAGE = (
    "Taking courses needs a member profile, and this user has none; create a "
    "member for the user first."
)


def _require_member(request: Request) -> Member:
    member = get_member_for_user(request.user)
    if member is None:
        raise DomainError(NO_MEMBER_MESSAGE, code="forbidden")
    return member


class CatalogueOrderPagination(CursorPagination):
    ordering = ("position", "title", "id")
    page_size_query_param = "page_size"
    max_page_size = 100


class NewestFirstPagination(CursorPagination):
    ordering = "-id"
    page_size_query_param = "page_size"
    max_page_size = 100


def _progress_fields(*, done: int, total: int) -> dict:
    return {
        "lessons_done": done,
        "published_lessons": total,
        "percent": Progress(done=done, total=total).percent,
    }


class CourseSerializer(serializers.ModelSerializer):
    my_progress = serializers.SerializerMethodField(
        help_text="Null unless the user's member is enrolled."
    )

    class Meta:
        model = Course
        fields = [
            "id",
            "slug",
            "title",
            "summary",
            "estimated_minutes",
            "my_progress",
        ]
        read_only_fields = fields

    def get_my_progress(self, course: Course) -> dict | None:
        if course.enrolment_id is None:
            return None
        return {
            "enrolled_at": course.enrolled_at,
            "completed_at": course.completed_at,
            **_progress_fields(
                done=course.lessons_done, total=course.published_lessons
            ),
        }


class EnrolmentSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    course = serializers.CharField(source="course.slug", help_text="The course slug.")
    started_at = serializers.DateTimeField()
    completed_at = serializers.DateTimeField(allow_null=True)
    lessons_done = serializers.IntegerField()
    published_lessons = serializers.IntegerField()
    percent = serializers.SerializerMethodField()

    def get_percent(self, enrolment) -> int | None:
        return Progress(
            done=enrolment.lessons_done, total=enrolment.published_lessons
        ).percent


class CertificateSerializer(serializers.Serializer):
    verification_code = serializers.UUIDField()
    certification = serializers.CharField(source="certification.title")
    holder_name = serializers.CharField()
    issued_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()
    status = serializers.SerializerMethodField(
        help_text="valid, expired or revoked, now."
    )

    def get_status(self, certificate: MemberCertificate) -> str:
        return get_certificate_status(certificate, now=self.context["now"])


class QuizSubmitSerializer(serializers.Serializer):
    answers = serializers.DictField(
        child=serializers.ListField(child=serializers.IntegerField()),
        help_text="Question id to the list of chosen choice ids.",
    )


class AttemptSerializer(serializers.Serializer):
    number = serializers.IntegerField()
    score = serializers.IntegerField(help_text="Percent of questions right.")
    passed = serializers.BooleanField()
    submitted_at = serializers.DateTimeField()
    certificates = serializers.SerializerMethodField()

    def get_certificates(self, attempt) -> list[str]:
        return [str(c.verification_code) for c in attempt.certificates.all()]


class CourseViewSet(viewsets.ReadOnlyModelViewSet):
    """Published courses in catalogue order, with the user's progress."""

    serializer_class = CourseSerializer
    pagination_class = CatalogueOrderPagination
    permission_classes = [IsAuthenticated]
    lookup_field = "slug"
    filter_backends = []

    def get_queryset(self):
        return list_published_courses(member=get_member_for_user(self.request.user))

    @extend_schema(request=None, responses={201: CourseSerializer})
    @action(detail=True, methods=["post"])
    def enrol(self, request: Request, slug=None) -> Response:
        """Enrol the user's member; a 400 response names missing prerequisites."""
        member = _require_member(request)
        course = self.get_object()
        enrol_member(member=member, course=course)
        course = self.get_queryset().get(pk=course.pk)
        return Response(CourseSerializer(course).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=QuizSubmitSerializer, responses={201: AttemptSerializer})
    @action(detail=True, methods=["post"], url_path="quiz/submit")
    def quiz_submit(self, request: Request, slug=None) -> Response:
        """Grade the answers on the server and return the attempt."""
        serializer = QuizSubmitSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        member = _require_member(request)
        course = self.get_object()
        quiz = Quiz.objects.filter(course=course).first()
        if quiz is None:
            raise NotFound(f"The course {course.slug!r} has no quiz.")
        attempt = submit_quiz(
            member=member, quiz=quiz, answers=serializer.validated_data["answers"]
        )
        return Response(AttemptSerializer(attempt).data, status=status.HTTP_201_CREATED)


class LessonCompleteView(APIView):
    """Mark a published lesson of an enrolled course done."""

    permission_classes = [IsAuthenticated]

    @extend_schema(request=None, responses={200: EnrolmentSerializer})
    def post(self, request: Request, slug: str, lesson_id: int) -> Response:
        member = _require_member(request)
        try:
            course = access_course(slug=slug)
            lesson = access_lesson(course=course, lesson_id=lesson_id, is_staff=False)
        except (Course.DoesNotExist, Lesson.DoesNotExist):
            raise NotFound("No such published lesson in this course.") from None
        complete_lesson(member=member, lesson=lesson)
        enrolment = list_member_enrolments(member=member).get(
            pk=get_enrolment(member=member, course=course).pk
        )
        return Response(EnrolmentSerializer(enrolment).data)


class EnrolmentViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """The user's own enrolments with progress, newest first."""

    serializer_class = EnrolmentSerializer
    pagination_class = NewestFirstPagination
    permission_classes = [IsAuthenticated]
    filter_backends = []

    def get_queryset(self):
        member = get_member_for_user(self.request.user)
        if member is None:
            return CourseEnrolment.objects.none()
        return list_member_enrolments(member=member)


class CertificateViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """The user's own certificates with their status, newest first."""

    serializer_class = CertificateSerializer
    pagination_class = NewestFirstPagination
    permission_classes = [IsAuthenticated]
    filter_backends = []

    def get_queryset(self):
        member = get_member_for_user(self.request.user)
        if member is None:
            return MemberCertificate.objects.none()
        return list_member_certificates(member=member)

    def get_serializer_context(self) -> dict:
        return {**super().get_serializer_context(), "now": timezone.now()}


class CertificateVerifyView(APIView):
    """Verify a certificate by its code, for anyone: name, certification, dates."""

    permission_classes = [AllowAny]
    authentication_classes = []

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "code",
                OpenApiTypes.UUID,
                OpenApiParameter.PATH,
                description="The certificate's verification code.",
            )
        ],
        responses={200: CertificateSerializer},
    )
    def get(self, request: Request, code: str) -> Response:
        # The route takes any string, so a malformed code gets this JSON 404
        # rather than the URL resolver's HTML one.
        try:
            code = uuid.UUID(code)
        except ValueError:
            raise NotFound(
                f"Invalid certificate code {code!r}: it is not a UUID. Copy the "
                "whole code from the certificate's verification link."
            ) from None
        certificate = get_certificate_by_code(code)
        if certificate is None:
            raise NotFound(f"No certificate has the code {code}.")
        data = CertificateSerializer(certificate, context={"now": timezone.now()}).data
        return Response(data)


router = SimpleRouter()
router.register("courses", CourseViewSet, basename="course")
router.register("enrolments", EnrolmentViewSet, basename="enrolment")
router.register("certificates", CertificateViewSet, basename="certificate")

urlpatterns = [
    path(
        "courses/<slug:slug>/lessons/<int:lesson_id>/complete/",
        LessonCompleteView.as_view(),
        name="lesson-complete",
    ),
    path(
        "certificates/verify/<str:code>/",
        CertificateVerifyView.as_view(),
        name="certificate-verify",
    ),
    *router.urls,
]
