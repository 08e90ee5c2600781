"""Admin screens for courses, quizzes, certifications, enrolments and certificates.

Enrolments, attempts and certificates are records of what members did, so
they are read-only here; staff change a certificate only by revoking it,
which the revoke action does through the service and audits.
"""

from django import forms
from django.contrib import admin, messages
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.template.defaultfilters import pluralize
from django.urls import reverse
from django.utils.html import format_html

from apps.portal.models import (
    Certification,
    Course,
    CourseEnrolment,
    CourseModule,
    LearningPath,
    LearningPathCourse,
    Lesson,
    LessonCompletion,
    LessonDownload,
    MemberCertificate,
    Quiz,
    QuizAttempt,
    QuizChoice,
    QuizQuestion,
)
from apps.portal.selectors.courses import get_video_embed_url
from apps.portal.services.certificates import revoke_certificate
from apps.portal.services.courses import reset_quiz_attempts


class ReadOnlyAdminMixin:
    """Allow viewing only: these rows record what members did."""

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


class CourseModuleInline(admin.TabularInline):
    model = CourseModule
    extra = 0
    fields = ["title", "position", "lessons_link"]
    readonly_fields = ["lessons_link"]

    @admin.display(description="Lessons")
    def lessons_link(self, module: CourseModule) -> str:
        if module.pk is None:
            return "-"
        changelist = reverse("admin:portal_lesson_changelist")
        url = f"{changelist}?module__id__exact={module.pk}"
        return format_html('<a href="{}">Lessons of this module</a>', url)


class CourseForm(forms.ModelForm):
    class Meta:
        model = Course
        fields = [
            "title",
            "slug",
            "summary",
            "description",
            "prerequisites",
            "estimated_minutes",
            "is_published",
            "position",
        ]

    def clean_prerequisites(self):
        prerequisites = self.cleaned_data["prerequisites"]
        if self.instance.pk is None:
            return prerequisites
        # A course among its own prerequisites, directly or through others,
        # could never be enrolled in.
        seen: set[int] = set()
        frontier = {c.pk for c in prerequisites}
        while frontier:
            if self.instance.pk in frontier:
                raise forms.ValidationError(
                    "These prerequisites lead back to this course, so nobody "
                    "could ever enrol in it. Remove the course that requires "
                    "this one."
                )
            seen |= frontier
            frontier = (
                set(
                    Course.prerequisites.through.objects.filter(
                        from_course_id__in=frontier
                    ).values_list("to_course_id", flat=True)
                )
                - seen
            )
        return prerequisites


@admin.register(Course)
class CourseAdmin(admin.ModelAdmin):
    form = CourseForm
    list_display = ["title", "slug", "is_published", "position", "lesson_count"]
    list_editable = ["is_published", "position"]
    list_filter = ["is_published"]
    search_fields = ["title", "slug"]
    prepopulated_fields = {"slug": ["title"]}
    filter_horizontal = ["prerequisites"]
    inlines = [CourseModuleInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Course]:
        return (
            super()
            .get_queryset(request)
            .annotate(lesson_total=Count("modules__lessons"))
        )

    @admin.display(description="Lessons", ordering="lesson_total")
    def lesson_count(self, course: Course) -> int:
        return course.lesson_total


class LearningPathCourseInline(admin.TabularInline):
    model = LearningPathCourse
    extra = 0
    autocomplete_fields = ["course"]


@admin.register(LearningPath)
class LearningPathAdmin(admin.ModelAdmin):
    list_display = ["title", "slug", "is_published"]
    list_filter = ["is_published"]
    search_fields = ["title", "slug"]
    prepopulated_fields = {"slug": ["title"]}
    inlines = [LearningPathCourseInline]


class LessonDownloadForm(forms.ModelForm):
    class Meta:
        model = LessonDownload
        fields = ["title", "file"]

    def save(self, commit: bool = True) -> LessonDownload:
        download = super().save(commit=False)
        if download.file:
            download.size = download.file.size
        if commit:
            download.save()
        return download


class LessonDownloadInline(admin.TabularInline):
    model = LessonDownload
    form = LessonDownloadForm
    extra = 0


class LessonForm(forms.ModelForm):
    class Meta:
        model = Lesson
        fields = [
            "module",
            "title",
            "slug",
            "body",
            "video_url",
            "is_published",
            "position",
        ]

    def clean_video_url(self) -> str:
        url = self.cleaned_data["video_url"].strip()
        if url and not url.lower().startswith("https://"):
            raise forms.ValidationError(
                "%(url)s is not an https link. Use the https address of the "
                "video, for example https://www.youtube.com/watch?v=...",
                params={"url": repr(url)},
                code="insecure_video_url",
            )
        return url


@admin.register(Lesson)
class LessonAdmin(admin.ModelAdmin):
    form = LessonForm
    list_display = [
        "title",
        "module",
        "course",
        "position",
        "is_published",
        "video_shown_as",
    ]
    list_editable = ["position", "is_published"]
    list_filter = ["is_published", "module__course"]
    list_select_related = ["module__course"]
    search_fields = ["title", "slug", "module__title", "module__course__title"]
    prepopulated_fields = {"slug": ["title"]}
    inlines = [LessonDownloadInline]

    @admin.display(description="Course", ordering="module__course__title")
    def course(self, lesson: Lesson) -> Course:
        return lesson.module.course

    @admin.display(description="Video")
    def video_shown_as(self, lesson: Lesson) -> str:
        if not lesson.video_url:
            return "-"
        return "Embedded" if get_video_embed_url(lesson.video_url) else "Link"

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "module":
            kwargs["queryset"] = CourseModule.objects.select_related("course")
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class QuizQuestionInline(admin.TabularInline):
    model = QuizQuestion
    extra = 0
    fields = ["prompt", "position", "choices_link"]
    readonly_fields = ["choices_link"]

    @admin.display(description="Choices")
    def choices_link(self, question: QuizQuestion) -> str:
        if question.pk is None:
            return "Save first, then add choices."
        url = reverse("admin:portal_quizquestion_change", args=[question.pk])
        return format_html('<a href="{}">Edit choices</a>', url)


@admin.register(Quiz)
class QuizAdmin(admin.ModelAdmin):
    list_display = ["title", "course", "pass_mark", "max_attempts", "question_count"]
    list_select_related = ["course"]
    search_fields = ["title", "course__title"]
    autocomplete_fields = ["course"]
    inlines = [QuizQuestionInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Quiz]:
        return super().get_queryset(request).annotate(question_total=Count("questions"))

    @admin.display(description="Questions", ordering="question_total")
    def question_count(self, quiz: Quiz) -> int:
        return quiz.question_total


class QuizChoiceInline(admin.TabularInline):
    model = QuizChoice
    extra = 0
    fields = ["text", "is_correct", "position"]


@admin.register(QuizQuestion)
class QuizQuestionAdmin(admin.ModelAdmin):
    list_display = ["__str__", "quiz", "position"]
    list_select_related = ["quiz"]
    list_filter = ["quiz"]
    search_fields = ["prompt", "quiz__title"]
    inlines = [QuizChoiceInline]


@admin.register(Certification)
class CertificationAdmin(admin.ModelAdmin):
    list_display = [
        "title",
        "course",
        "validity_days",
        "remind_days_before",
        "is_active",
    ]
    list_select_related = ["course"]
    list_filter = ["is_active"]
    search_fields = ["title", "slug", "course__title"]
    prepopulated_fields = {"slug": ["title"]}
    autocomplete_fields = ["course"]


@admin.register(MemberCertificate)
class MemberCertificateAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "holder_name",
        "certification",
        "issued_at",
        "expires_at",
        "reminder_sent_at",
        "revoked_at",
    ]
    list_select_related = ["certification"]
    list_filter = ["certification", "revoked_at"]
    search_fields = [
        "holder_name",
        "member__user__email",
        "verification_code",
    ]
    date_hierarchy = "issued_at"
    actions = ["revoke_selected"]
    readonly_fields = [
        "member",
        "certification",
        "attempt",
        "verification_code",
        "holder_name",
        "issued_at",
        "expires_at",
        "reminder_sent_at",
        "expiry_recorded_at",
        "revoked_at",
        "revoked_by",
        "verification_link",
    ]
    fields = readonly_fields

    @admin.display(description="Verification page")
    def verification_link(self, certificate: MemberCertificate) -> str:
        url = reverse(
            "portal:certificate_verify",
            kwargs={"code": certificate.verification_code},
        )
        return format_html('<a href="{}">{}</a>', url, url)

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("portal.change_membercertificate")

    @admin.action(
        description="Revoke the selected certificates", permissions=["revoke"]
    )
    def revoke_selected(
        self, request: HttpRequest, queryset: QuerySet[MemberCertificate]
    ) -> None:
        revoked = 0
        for certificate in queryset:
            revoked += revoke_certificate(
                certificate=certificate,
                revoked_by=request.user,
                reason="admin action",
            )
        skipped = queryset.count() - revoked
        message = f"Revoked {revoked} certificate{pluralize(revoked)}."
        if skipped:
            verb = "was" if skipped == 1 else "were"
            message += (
                f" {skipped} certificate{pluralize(skipped)} {verb} already "
                "revoked and stayed unchanged."
            )
        level = messages.SUCCESS if revoked else messages.WARNING
        self.message_user(request, message, level)


class LessonCompletionInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = LessonCompletion
    extra = 0
    fields = ["lesson", "completed_at"]
    readonly_fields = fields


class QuizAttemptInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = QuizAttempt
    extra = 0
    fields = ["number", "score", "passed", "submitted_at"]
    readonly_fields = fields


@admin.register(CourseEnrolment)
class CourseEnrolmentAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["member", "course", "started_at", "completed_at"]
    list_select_related = ["member__user", "course"]
    list_filter = ["course", "completed_at"]
    search_fields = ["member__user__email", "member__display_name", "course__title"]
    date_hierarchy = "started_at"
    inlines = [LessonCompletionInline, QuizAttemptInline]
    actions = ["reset_attempts"]

    def has_reset_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("portal.change_courseenrolment")

    @admin.action(
        description="Give new quiz attempts to the selected enrolments",
        permissions=["reset"],
    )
    def reset_attempts(
        self, request: HttpRequest, queryset: QuerySet[CourseEnrolment]
    ) -> None:
        reset = sum(
            reset_quiz_attempts(enrolment=enrolment, reset_by=request.user)
            for enrolment in queryset
        )
        self.message_user(
            request,
            f"Gave new quiz attempts to {reset} enrolment(s); courses without "
            "a quiz were skipped.",
            messages.SUCCESS,
        )


@admin.register(QuizAttempt)
class QuizAttemptAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["enrolment", "quiz", "number", "score", "passed", "submitted_at"]
    list_select_related = ["enrolment__member__user", "enrolment__course", "quiz"]
    list_filter = ["passed", "quiz"]
    search_fields = ["enrolment__member__user__email", "quiz__title"]
    readonly_fields = [
        "enrolment",
        "quiz",
        "number",
        "answers",
        "score",
        "passed",
        "submitted_at",
    ]
