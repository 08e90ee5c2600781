from django.urls import path

from apps.lifecycle import views

app_name = "lifecycle"

urlpatterns = [
    path("accounts/<int:pk>/health/", views.account_health, name="account_health"),
    path("members/<int:pk>/health/", views.member_health, name="member_health"),
]
