from django.urls import path

from apps.portal.views import courses

urlpatterns = [
    path("courses/", courses.catalogue, name="catalogue"),
    path(
        "courses/completion/",
        courses.completion_report,
        name="course_completion_report",
    ),
    path("courses/<slug:slug>/", courses.course_detail, name="course"),
    path("courses/<slug:slug>/enrol/", courses.course_enrol, name="course_enrol"),
    path(
        "courses/<slug:slug>/lessons/<int:lesson_id>/",
        courses.lesson_detail,
        name="lesson",
    ),
    path(
        "courses/<slug:slug>/lessons/<int:lesson_id>/complete/",
        courses.lesson_complete,
        name="lesson_complete",
    ),
    path(
        "courses/<slug:slug>/downloads/<int:download_id>/",
        courses.lesson_download,
        name="lesson_download",
    ),
    path("courses/<slug:slug>/quiz/", courses.quiz_take, name="quiz"),
    path(
        "learning-paths/<slug:slug>/",
        courses.learning_path_detail,
        name="learning_path",
    ),
    path("certificates/", courses.certificate_list, name="certificate_list"),
    path(
        "certificates/<uuid:code>/",
        courses.certificate_verify,
        name="certificate_verify",
    ),
    path(
        "certificates/<uuid:code>/pdf/",
        courses.certificate_pdf,
        name="certificate_pdf",
    ),
]
