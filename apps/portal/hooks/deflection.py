from apps.lifecycle.registry import register_kind


def connect() -> None:
    register_kind("portal.case_form_opened", "A member opened the new-case form.")
