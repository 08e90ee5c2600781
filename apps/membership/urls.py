from django.urls import path

from apps.membership import views, views_privacy

app_name = "membership"

urlpatterns = [
    path("me/", views.profile_edit, name="profile_edit"),
    path("me/data.json", views.data_export, name="data_export"),
    path("me/delete/", views.delete_account, name="delete_account"),
    path("<int:pk>/", views.profile, name="profile"),
    path("me/privacy/", views_privacy.privacy, name="privacy"),
]
