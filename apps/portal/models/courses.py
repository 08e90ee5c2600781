"""Courses, learning paths, quizzes, enrolments and certifications."""

import uuid

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from apps.membership.models import Member


class Course(models.Model):
    """A course of modules and lessons, optionally ending in a graded quiz."""

    title = models.CharField(max_length=200)
    slug = models.SlugField(max_length=80, unique=True)
    summary = models.CharField(max_length=300, blank=True, default="")
    description = models.TextField(blank=True, default="", help_text="Markdown.")
    prerequisites = models.ManyToManyField(
        "self",
        symmetrical=False,
        blank=True,
        related_name="required_by",
        help_text="Courses a member must complete before enrolling.",
    )
    estimated_minutes = models.PositiveIntegerField(null=True, blank=True)
    is_published = models.BooleanField(default=False)
    position = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["position", "title"]

    def __str__(self) -> str:
        return self.title


class LearningPath(models.Model):
    """An ordered sequence of courses towards a goal."""

    title = models.CharField(max_length=200)
    slug = models.SlugField(max_length=80, unique=True)
    description = models.TextField(blank=True, default="")
    courses = models.ManyToManyField(
        Course, through="LearningPathCourse", related_name="learning_paths"
    )
    is_published = models.BooleanField(default=False)

    class Meta:
        ordering = ["title"]

    def __str__(self) -> str:
        return self.title


class LearningPathCourse(models.Model):
    path = models.ForeignKey(LearningPath, on_delete=models.CASCADE)
    course = models.ForeignKey(Course, on_delete=models.CASCADE)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["path", "position", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["path", "course"], name="portal_path_course_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.path}: {self.course}"


class CourseModule(models.Model):
    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="modules")
    title = models.CharField(max_length=200)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["course", "position", "id"]

    def __str__(self) -> str:
        return self.title


class Lesson(models.Model):
    """A lesson: markdown text, an optional embedded video and downloads.

    Only published lessons count towards a course's progress.
    """

    module = models.ForeignKey(
        CourseModule, on_delete=models.CASCADE, related_name="lessons"
    )
    title = models.CharField(max_length=200)
    slug = models.SlugField(max_length=80)
    body = models.TextField(blank=True, default="", help_text="Markdown.")
    video_url = models.URLField(
        blank=True,
        default="",
        help_text="An https link to a video on an allowed host (settings."
        "RM6_VIDEO_HOSTS), embedded in the lesson.",
    )
    is_published = models.BooleanField(default=False)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["module", "position", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["module", "slug"], name="portal_lesson_slug_per_module"
            )
        ]

    def __str__(self) -> str:
        return self.title


class LessonDownload(models.Model):
    lesson = models.ForeignKey(
        Lesson, on_delete=models.CASCADE, related_name="downloads"
    )
    title = models.CharField(max_length=200)
    file = models.FileField(upload_to="lessons/%Y/%m/")
    size = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ["lesson", "id"]

    def __str__(self) -> str:
        return self.title


class Quiz(models.Model):
    """The graded quiz that ends a course; passing completes the course."""

    course = models.OneToOneField(Course, on_delete=models.CASCADE, related_name="quiz")
    title = models.CharField(max_length=200)
    pass_mark = models.PositiveSmallIntegerField(
        default=70,
        validators=[MinValueValidator(1), MaxValueValidator(100)],
        help_text="The lowest score, in percent, that passes.",
    )
    max_attempts = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Empty for no limit."
    )

    class Meta:
        verbose_name_plural = "quizzes"

    def __str__(self) -> str:
        return self.title


class QuizQuestion(models.Model):
    quiz = models.ForeignKey(Quiz, on_delete=models.CASCADE, related_name="questions")
    prompt = models.TextField()
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["quiz", "position", "id"]

    def __str__(self) -> str:
        return self.prompt[:80]


class QuizChoice(models.Model):
    question = models.ForeignKey(
        QuizQuestion, on_delete=models.CASCADE, related_name="choices"
    )
    text = models.CharField(max_length=300)
    is_correct = models.BooleanField(default=False)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["question", "position", "id"]

    def __str__(self) -> str:
        return self.text


class CourseEnrolment(models.Model):
    """A member taking a course; completed once every published lesson is
    done and the quiz, if any, is passed."""

    member = models.ForeignKey(
        Member, on_delete=models.CASCADE, related_name="course_enrolments"
    )
    course = models.ForeignKey(
        Course, on_delete=models.CASCADE, related_name="course_enrolments"
    )
    started_at = models.DateTimeField()
    completed_at = models.DateTimeField(null=True, blank=True)
    quiz_attempts_reset_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Quiz attempts before this time no longer count towards the "
        "quiz's maximum; staff set it to give the member new attempts.",
    )

    class Meta:
        ordering = ["-started_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["member", "course"], name="portal_enrolment_once"
            )
        ]
        indexes = [
            models.Index(fields=["started_at"], name="portal_enrolment_started_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.member} in {self.course}"


class LessonCompletion(models.Model):
    enrolment = models.ForeignKey(
        CourseEnrolment, on_delete=models.CASCADE, related_name="lesson_completions"
    )
    lesson = models.ForeignKey(Lesson, on_delete=models.CASCADE, related_name="+")
    completed_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["enrolment", "lesson"], name="portal_lesson_done_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.enrolment}: {self.lesson}"


class QuizAttempt(models.Model):
    """One graded submission of a quiz, with the answers as given."""

    enrolment = models.ForeignKey(
        CourseEnrolment, on_delete=models.CASCADE, related_name="quiz_attempts"
    )
    quiz = models.ForeignKey(Quiz, on_delete=models.CASCADE, related_name="attempts")
    number = models.PositiveSmallIntegerField(
        help_text="1 for the member's first attempt at this quiz, then 2, 3 and so on."
    )
    answers = models.JSONField(
        default=dict, help_text="Question id to the chosen choice ids."
    )
    score = models.PositiveSmallIntegerField(help_text="Percent of questions right.")
    passed = models.BooleanField()
    submitted_at = models.DateTimeField()

    class Meta:
        ordering = ["-submitted_at"]
        constraints = [
            # With the enrolment row lock taken while grading, this keeps the
            # attempt count exact, so max_attempts holds under concurrency.
            models.UniqueConstraint(
                fields=["enrolment", "quiz", "number"],
                name="portal_quiz_attempt_number_once",
            )
        ]

    def __str__(self) -> str:
        return f"{self.enrolment} scored {self.score}%"


class Certification(models.Model):
    """A credential earned by passing a course's quiz, valid for a while."""

    title = models.CharField(max_length=200)
    slug = models.SlugField(max_length=80, unique=True)
    description = models.TextField(blank=True, default="")
    course = models.ForeignKey(
        Course,
        on_delete=models.PROTECT,
        related_name="certifications",
        help_text="Passing this course's quiz earns the certification.",
    )
    validity_days = models.PositiveIntegerField(
        default=365, help_text="How long a certificate stays valid."
    )
    remind_days_before = models.PositiveSmallIntegerField(
        default=30,
        help_text="How many days before expiry the member is reminded to recertify.",
    )
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["title"]

    def __str__(self) -> str:
        return self.title


class MemberCertificate(models.Model):
    """A certificate issued to a member, verifiable at a unique public URL."""

    member = models.ForeignKey(
        Member, on_delete=models.CASCADE, related_name="certificates"
    )
    certification = models.ForeignKey(
        Certification, on_delete=models.PROTECT, related_name="certificates"
    )
    attempt = models.ForeignKey(
        QuizAttempt,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="certificates",
        help_text="The passing attempt that earned it; one certificate of each "
        "certification per attempt.",
    )
    verification_code = models.UUIDField(
        default=uuid.uuid4, unique=True, editable=False
    )
    holder_name = models.CharField(
        max_length=200, help_text="The name printed on the certificate when issued."
    )
    issued_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    reminder_sent_at = models.DateTimeField(null=True, blank=True)
    expiry_recorded_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When the expiry task handled this certificate after it lapsed.",
    )
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )

    class Meta:
        ordering = ["-issued_at"]
        constraints = [
            # Retried grading never issues a second certificate for one pass.
            models.UniqueConstraint(
                fields=["attempt", "certification"],
                name="portal_certificate_once_per_attempt",
            )
        ]
        indexes = [
            models.Index(fields=["expires_at"], name="portal_cert_expires_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.certification} for {self.holder_name}"
