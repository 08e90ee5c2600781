from apps.lifecycle.registry import register_kind


def connect() -> None:
    register_kind("portal.article_viewed", "A member read a knowledge base article.")
    register_kind(
        "portal.article_feedback",
        'A member answered or changed "was this article helpful".',
    )
