from django.urls import path

from apps.lifecycle.delivery import views, views_csm

app_name = "delivery"

urlpatterns = [
    path("notifications/", views.notification_list, name="notifications"),
    path(
        "notifications/read-all/",
        views.notifications_read_all,
        name="notifications_read_all",
    ),
    path(
        "notifications/<int:pk>/open/",
        views.notification_open,
        name="notification_open",
    ),
    path(
        "notifications/<int:pk>/read/",
        views.notification_read,
        name="notification_read",
    ),
    path("unsubscribe/<str:token>/", views.unsubscribe, name="unsubscribe"),
    path("csm/tasks/", views_csm.csm_task_list, name="csm_tasks"),
    path("csm/tasks/<int:pk>/close/", views_csm.csm_task_close, name="csm_task_close"),
]
