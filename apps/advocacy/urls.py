from django.urls import path

from apps.advocacy import views

app_name = "advocacy"

urlpatterns = [
    path("", views.advocacy_home, name="home"),
    path("asks/", views.ask_list, name="asks"),
    path("asks/<int:pk>/accept/", views.ask_accept, name="ask_accept"),
    path("asks/<int:pk>/decline/", views.ask_decline, name="ask_decline"),
]
