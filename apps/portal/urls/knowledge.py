from django.urls import path

from apps.portal.views import deflection, gaps, knowledge

urlpatterns = [
    path("articles/", knowledge.article_list, name="articles"),
    path("articles/new/", knowledge.article_edit, name="article_create"),
    path(
        "articles/overdue-reviews/",
        knowledge.overdue_reviews,
        name="overdue_reviews",
    ),
    path("articles/<slug:slug>/", knowledge.article_detail, name="article"),
    path(
        "articles/<slug:slug>/feedback/",
        knowledge.article_feedback,
        name="article_feedback",
    ),
    path("articles/<slug:slug>/edit/", knowledge.article_edit, name="article_edit"),
    path(
        "articles/<slug:slug>/reviewed/",
        knowledge.article_mark_reviewed,
        name="article_mark_reviewed",
    ),
    path(
        "articles/<slug:slug>/versions/",
        knowledge.article_versions,
        name="article_versions",
    ),
    path(
        "articles/<slug:slug>/versions/<int:number>/",
        knowledge.article_version_diff,
        name="article_version_diff",
    ),
    path(
        "cases/suggestions/",
        deflection.case_suggestions,
        name="case_suggestions",
    ),
    path(
        "cases/suggestions/<int:pk>/open/",
        deflection.suggestion_open,
        name="open_suggestion",
    ),
    path(
        "cases/suggestions/<int:pk>/solved/",
        deflection.suggestion_solved,
        name="suggestion_solved",
    ),
    path("deflection/", deflection.deflection_report, name="deflection_report"),
    path("content-gaps/", gaps.gap_list, name="gaps"),
    path("content-gaps/<int:pk>/", gaps.gap_update, name="gap_update"),
    path(
        "content-gaps/<int:pk>/draft/",
        gaps.gap_draft_article,
        name="gap_draft_article",
    ),
]
