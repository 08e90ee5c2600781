from apps.lifecycle.registry import register_kind


def connect() -> None:
    register_kind("portal.case_form_opened", "A member opened the new-case form.")
    register_kind(
        "portal.suggestion_opened",
        "A member opened an answer the case form suggested.",
    )
    register_kind(
        "portal.suggestion_solved",
        "A member said an answer the case form suggested solved their problem.",
    )
