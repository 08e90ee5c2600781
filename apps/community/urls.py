from django.urls import path

from apps.community import views

app_name = "community"

urlpatterns = [
    path("", views.space_list, name="spaces"),
    path("t/<int:pk>/", views.topic_detail, name="topic"),
    path("t/<int:pk>/reply/", views.reply_create, name="reply"),
    path("<slug:slug>/", views.space_detail, name="space"),
    path("<slug:slug>/new/", views.topic_create, name="new_topic"),
    path("members/<int:pk>/posts/", views.member_posts, name="member_posts"),
]
