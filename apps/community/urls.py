from django.urls import path

from apps.community import views
from apps.community.views import events as event_views
from apps.community.views import moderation as moderation_views
from apps.community.views import posts as post_views
from apps.community.views import questions as question_views
from apps.community.views import search as search_views
from apps.community.views import subscriptions as subscription_views

app_name = "community"

urlpatterns = [
    path("", views.space_list, name="spaces"),
    path("t/<int:pk>/", views.topic_detail, name="topic"),
    path("t/<int:pk>/reply/", views.reply_create, name="reply"),
    path("<slug:slug>/", views.space_detail, name="space"),
    path("<slug:slug>/new/", views.topic_create, name="new_topic"),
    path("members/<int:pk>/posts/", views.member_posts, name="member_posts"),
]

# Placed ahead of the list so that "events/" is not read as a space's slug.
urlpatterns = [
    path("events/", event_views.event_list, name="events"),
    path("events/<int:pk>/", event_views.event_detail, name="event"),
    path("events/<int:pk>/rsvp/", event_views.event_rsvp, name="event_rsvp"),
    path(
        "events/<int:pk>/rsvp/cancel/",
        event_views.event_rsvp_cancel,
        name="event_rsvp_cancel",
    ),
    path("events/<int:pk>/event.ics", event_views.event_ics, name="event_ics"),
    path(
        "events/<int:pk>/attendance/",
        event_views.event_attendance,
        name="event_attendance",
    ),
    path(
        "watch/<str:target_type>/<int:pk>/",
        subscription_views.watch_toggle,
        name="watch",
    ),
    path(
        "watch/<str:target_type>/<int:pk>/button/",
        subscription_views.watch_button,
        name="watch_button",
    ),
    *urlpatterns,
]

# Placed ahead of the list so that "search/" is not read as a space's slug.
urlpatterns = [
    path("search/", search_views.search, name="search"),
    path("similar/", search_views.similar_questions, name="similar_questions"),
    *urlpatterns,
]

# Placed ahead of the list so that "unanswered/", "ideas/" and "moderation/"
# are not read as a space's slug.
urlpatterns = [
    path("unanswered/", question_views.unanswered_list, name="unanswered"),
    path("unsolved/", question_views.unsolved_list, name="unsolved"),
    path("ideas/", question_views.idea_list, name="ideas"),
    path(
        "t/<int:pk>/solution/",
        question_views.solution_accept,
        name="solution_accept",
    ),
    path(
        "t/<int:pk>/solution/remove/",
        question_views.solution_unaccept,
        name="solution_unaccept",
    ),
    path(
        "t/<int:pk>/idea-status/",
        question_views.idea_status_update,
        name="idea_status",
    ),
    path(
        "flag/<str:kind>/<int:pk>/",
        moderation_views.flag_create,
        name="flag",
    ),
    path("moderation/", moderation_views.moderation_queue, name="moderation_queue"),
    path("moderation/log/", moderation_views.moderation_log, name="moderation_log"),
    path(
        "moderation/members/<int:pk>/suspend/",
        moderation_views.member_suspend,
        name="member_suspend",
    ),
    path(
        "moderation/members/<int:pk>/unsuspend/",
        moderation_views.member_unsuspend,
        name="member_unsuspend",
    ),
    path(
        "moderation/<str:kind>/<int:pk>/<str:action>/",
        moderation_views.post_action,
        name="moderate",
    ),
    *urlpatterns,
]

# Placed ahead of the list so that "tags/", "history/" and "mention-search/"
# are not read as a space's slug.
urlpatterns = [
    path("t/<int:pk>/edit/", post_views.topic_edit, name="topic_edit"),
    path("t/<int:pk>/tags/", post_views.topic_tags, name="topic_tags"),
    path("r/<int:pk>/edit/", post_views.reply_edit, name="reply_edit"),
    path(
        "history/<str:kind>/<int:pk>/",
        post_views.post_history,
        name="post_history",
    ),
    path("vote/<str:kind>/<int:pk>/", post_views.post_vote, name="vote"),
    path("kudos/<str:kind>/<int:pk>/", post_views.post_kudos, name="kudos"),
    path("tags/<slug:slug>/", post_views.tag_detail, name="tag"),
    path("mention-search/", post_views.mention_search, name="mention_search"),
    *urlpatterns,
]
