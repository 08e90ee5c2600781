"""Help text of the project's models, which admin renders as HTML."""

import re

from django.apps import apps

# An opening or closing tag: the browser hides it, so "<prefix>" shows as "".
HTML_TAG = re.compile(r"</?[A-Za-z]")


def project_help_texts() -> dict[str, str]:
    help_texts = {}
    for model in apps.get_models():
        if not model.__module__.startswith("apps."):
            continue
        for field in model._meta.get_fields():
            help_text = str(getattr(field, "help_text", "") or "")
            if help_text:
                help_texts[f"{model._meta.label}.{field.name}"] = help_text
    return help_texts


def test_help_text_found_for_project_models():
    assert "lifecycle.SegmentSource.event_prefix" in project_help_texts()


def test_help_text_has_no_html_tags():
    tagged = {
        name: text
        for name, text in project_help_texts().items()
        if HTML_TAG.search(text)
    }

    assert tagged == {}


def test_help_text_segment_source_shown_whole(admin_client):
    response = admin_client.get("/admin/lifecycle/segmentsource/add/")

    assert "becomes product.report_exported." in response.content.decode()
