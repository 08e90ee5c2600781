from django.urls import path

from apps.portal.views import cases

urlpatterns = [
    path("cases/", cases.case_list, name="case_list"),
    path("cases/account/", cases.account_case_list, name="account_case_list"),
    path("cases/new/", cases.case_new, name="case_new"),
    path("cases/<int:pk>/", cases.case_detail, name="case_detail"),
    path("cases/<int:pk>/reply/", cases.case_reply, name="case_reply"),
    path("cases/<int:pk>/solved/", cases.case_mark_solved, name="case_mark_solved"),
    path("cases/<int:pk>/rating/", cases.case_rate, name="case_rate"),
    path(
        "cases/<int:pk>/files/<int:attachment_pk>/",
        cases.case_attachment,
        name="case_attachment",
    ),
    path("support/queue/", cases.case_queue, name="case_queue"),
    path("support/cases/<int:pk>/", cases.case_staff, name="case_staff"),
    path(
        "support/cases/<int:pk>/reply/",
        cases.case_staff_reply,
        name="case_staff_reply",
    ),
    path(
        "support/cases/<int:pk>/update/",
        cases.case_staff_update,
        name="case_staff_update",
    ),
]
