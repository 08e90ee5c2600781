"""The portal's models, one module per concern."""

from apps.portal.models.cases import (
    BusinessCalendar,
    BusinessHoliday,
    Case,
    CaseAttachment,
    CaseMessage,
    CaseStatusChange,
    CaseTopic,
    SlaPolicy,
)
from apps.portal.models.courses import (
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
from apps.portal.models.deflection import CaseAttempt, ContentGap, Suggestion
from apps.portal.models.hubs import HubItem, UseCaseHub
from apps.portal.models.knowledge import Article, ArticleFeedback, ArticleVersion
from apps.portal.models.onboarding import (
    OnboardingPath,
    OnboardingProgress,
    OnboardingStep,
    PathCompletion,
)

__all__ = [
    "Article",
    "ArticleFeedback",
    "ArticleVersion",
    "BusinessCalendar",
    "BusinessHoliday",
    "Case",
    "CaseAttachment",
    "CaseAttempt",
    "CaseMessage",
    "CaseStatusChange",
    "CaseTopic",
    "Certification",
    "ContentGap",
    "Course",
    "CourseEnrolment",
    "CourseModule",
    "HubItem",
    "LearningPath",
    "LearningPathCourse",
    "Lesson",
    "LessonCompletion",
    "LessonDownload",
    "MemberCertificate",
    "OnboardingPath",
    "OnboardingProgress",
    "OnboardingStep",
    "PathCompletion",
    "Quiz",
    "QuizAttempt",
    "QuizChoice",
    "QuizQuestion",
    "SlaPolicy",
    "Suggestion",
    "UseCaseHub",
]
