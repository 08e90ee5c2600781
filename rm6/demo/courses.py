"""Demo courses: two courses with modules, lessons, a quiz and a certification.

The courses are shared content, not demo members' data, so they stay when
the demo data is deleted, like the onboarding steps. Seeding again finds
them by slug and adds nothing.
"""

from datetime import datetime, timedelta

from apps.membership.models import Member
from apps.portal.models import (
    Certification,
    Course,
    CourseEnrolment,
    LearningPath,
    LearningPathCourse,
    Lesson,
    LessonCompletion,
    Quiz,
    QuizChoice,
    QuizQuestion,
)
from apps.portal.services.courses import complete_lesson, enrol_member, submit_quiz

BASICS_SLUG = "reporting-basics"
ADVANCED_SLUG = "advanced-dashboards"

# (module title, [(lesson title, body, video link)])
BASICS_MODULES = [
    (
        "Your first report",
        [
            (
                "Pick a template",
                "Open **Reports** and choose *New report*. Start from a template "
                "close to your question; you can change every part later.",
                "https://www.youtube.com/watch?v=aqz-KE-bpKQ",
            ),
            (
                "Filter and group",
                "Add a filter for the date range, then group rows by account.\n\n"
                "| Step | Where |\n| --- | --- |\n| Filter | Toolbar |\n"
                "| Group | Column menu |",
                "",
            ),
        ],
    ),
    (
        "Sharing",
        [
            (
                "Schedule an export",
                "Reports can be emailed as CSV on a schedule. Pick the day and "
                "time in your own time zone.",
                "",
            ),
        ],
    ),
]

# (prompt, [(choice, is_correct)])
BASICS_QUESTIONS = [
    (
        "Where do you start a new report?",
        [("Reports, then New report", True), ("Settings", False), ("Billing", False)],
    ),
    (
        "How do you show one row per account?",
        [("Group by account", True), ("Sort by date", False), ("Hide columns", False)],
    ),
    (
        "In which time zone is a scheduled export's time?",
        [("Your own", True), ("Always UTC", False), ("The server's", False)],
    ),
]


def _write_basics() -> Course:
    course, created = Course.objects.get_or_create(
        slug=BASICS_SLUG,
        defaults={
            "title": "Reporting basics",
            "summary": "Build, filter and share your first report.",
            "description": "Three short lessons and a quiz. Pass it to become "
            "a **Certified Report Builder**.",
            "estimated_minutes": 25,
            "is_published": True,
            "position": 1,
        },
    )
    if not created:
        return course

    for module_position, (module_title, lessons) in enumerate(BASICS_MODULES):
        module = course.modules.create(title=module_title, position=module_position)
        for position, (title, body, video_url) in enumerate(lessons):
            Lesson.objects.create(
                module=module,
                title=title,
                slug=f"lesson-{position + 1}",
                body=body,
                video_url=video_url,
                is_published=True,
                position=position,
            )
    quiz = Quiz.objects.create(
        course=course, title="Reporting basics quiz", pass_mark=70, max_attempts=3
    )
    for position, (prompt, choices) in enumerate(BASICS_QUESTIONS):
        question = QuizQuestion.objects.create(
            quiz=quiz, prompt=prompt, position=position
        )
        QuizChoice.objects.bulk_create(
            QuizChoice(
                question=question, text=text, is_correct=is_correct, position=number
            )
            for number, (text, is_correct) in enumerate(choices)
        )
    Certification.objects.create(
        course=course,
        title="Certified Report Builder",
        slug="certified-report-builder",
        description="Builds, filters and shares reports.",
        validity_days=365,
        remind_days_before=30,
    )
    return course


def _write_advanced(basics: Course) -> Course:
    course, created = Course.objects.get_or_create(
        slug=ADVANCED_SLUG,
        defaults={
            "title": "Advanced dashboards",
            "summary": "Combine reports into dashboards with alerts.",
            "estimated_minutes": 40,
            "is_published": True,
            "position": 2,
        },
    )
    if not created:
        return course

    course.prerequisites.add(basics)
    module = course.modules.create(title="Dashboards")
    Lesson.objects.create(
        module=module,
        title="Add a report to a dashboard",
        slug="add-report",
        body="Open a saved report and choose *Pin to dashboard*.",
        is_published=True,
    )
    Lesson.objects.create(
        module=module,
        title="Alerts on thresholds",
        slug="alerts",
        body="Coming soon.",
        is_published=False,
        position=1,
    )
    return course


# The champion earned the certification this long ago. It is valid for 365
# days and reminds 30 days before, so its renewal is due in the demo.
CHAMPION_CERTIFIED_DAYS_AGO = 345


def _certify_champion(member: Member, *, course: Course, now: datetime) -> None:
    """Take the course and pass its quiz as the champion, through the services.

    The services record the events, complete the course and issue the
    certificate, as when a member does it on the course pages.
    """
    if CourseEnrolment.objects.filter(member=member, course=course).exists():
        return
    when = now - timedelta(days=CHAMPION_CERTIFIED_DAYS_AGO)
    enrol_member(member=member, course=course, now=when)
    lessons = Lesson.objects.filter(module__course=course, is_published=True).order_by(
        "module__position", "position"
    )
    for lesson in lessons:
        complete_lesson(member=member, lesson=lesson, now=when)
    for quiz in Quiz.objects.filter(course=course):
        answers = {
            str(question.pk): [
                choice.pk for choice in question.choices.all() if choice.is_correct
            ]
            for question in quiz.questions.prefetch_related("choices")
        }
        submit_quiz(member=member, quiz=quiz, answers=answers, now=when)


def write_demo_courses(
    *, demo_member_email: str, now: datetime, champion_email: str = ""
) -> int:
    """Create the demo courses and a learning path; return how many courses are new.

    The demo member is enrolled in the first course with one lesson done,
    so their course pages show progress from the start. The champion passed
    it 345 days ago, so their certificate is due for renewal.
    """
    existing = Course.objects.filter(slug__in=[BASICS_SLUG, ADVANCED_SLUG]).count()
    basics = _write_basics()
    advanced = _write_advanced(basics)
    path, _ = LearningPath.objects.get_or_create(
        slug="analytics-foundations",
        defaults={
            "title": "Analytics foundations",
            "description": "From a first report to dashboards with alerts.",
            "is_published": True,
        },
    )
    for position, course in enumerate([basics, advanced]):
        LearningPathCourse.objects.get_or_create(
            path=path, course=course, defaults={"position": position}
        )

    member = Member.objects.filter(user__email=demo_member_email).first()
    if member is not None:
        enrolment, created = CourseEnrolment.objects.get_or_create(
            member=member, course=basics, defaults={"started_at": now}
        )
        first_lesson = (
            Lesson.objects.filter(module__course=basics)
            .order_by("module__position", "position")
            .first()
        )
        if created and first_lesson is not None:
            LessonCompletion.objects.create(
                enrolment=enrolment, lesson=first_lesson, completed_at=now
            )
    champion = Member.objects.filter(user__email=champion_email).first()
    if champion is not None:
        _certify_champion(champion, course=basics, now=now)
    return 2 - existing
