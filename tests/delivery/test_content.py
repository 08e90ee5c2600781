import pytest

from apps.lifecycle.delivery.content import (
    add_play_params,
    build_play_link,
    render_step_text,
    tag_site_links,
)
from apps.lifecycle.delivery.step_config import check_step_template
from apps.lifecycle.models import Play, PlayStep
from rm6.errors import DomainError


@pytest.fixture
def site_url(settings):
    settings.SITE_URL = "https://hub.example.com"
    return settings.SITE_URL


def make_play(campaign_id: str = "q3-onboarding") -> Play:
    # Unsaved: the link helpers read only the two IDs.
    return Play(play_id="welcome-2025", campaign_id=campaign_id)


def test_add_play_params_adds_play_and_campaign():
    url = add_play_params("/community/", make_play())

    assert url == "/community/?play_id=welcome-2025&campaign_id=q3-onboarding"


def test_add_play_params_keeps_query_and_fragment():
    url = add_play_params("/portal/courses/?level=2&tag=#intro", make_play())

    assert url == (
        "/portal/courses/?level=2&tag=&play_id=welcome-2025"
        "&campaign_id=q3-onboarding#intro"
    )


def test_add_play_params_replaces_existing_ids():
    url = add_play_params("/x/?play_id=old&campaign_id=old&a=1", make_play())

    assert url == "/x/?a=1&play_id=welcome-2025&campaign_id=q3-onboarding"


def test_add_play_params_without_campaign():
    url = add_play_params("https://docs.example.com/a", make_play(campaign_id=""))

    assert url == "https://docs.example.com/a?play_id=welcome-2025"


def test_add_play_params_keeps_empty_url():
    assert add_play_params("", make_play()) == ""


def test_tag_site_links_param_ending_in_play_id(site_url):
    tagged = tag_site_links("See https://hub.example.com/x?display_id=3", make_play())

    assert tagged == (
        "See https://hub.example.com/x?display_id=3&play_id=welcome-2025"
        "&campaign_id=q3-onboarding"
    )


def test_build_play_link_makes_paths_absolute(site_url):
    url = build_play_link("/community/", make_play())

    assert url == (
        "https://hub.example.com/community/?play_id=welcome-2025"
        "&campaign_id=q3-onboarding"
    )


def test_build_play_link_leaves_other_sites_alone(site_url):
    url = build_play_link("https://other.example.com/page?a=1", make_play())

    assert url == "https://other.example.com/page?a=1"


def test_tag_site_links_tags_only_this_site(site_url):
    text = (
        "Read https://hub.example.com/guide/setup. "
        "Or https://other.example.com/page, "
        "or (https://hub.example.com/x?play_id=kept)."
    )

    tagged = tag_site_links(text, make_play())

    assert tagged == (
        "Read https://hub.example.com/guide/setup?play_id=welcome-2025"
        "&campaign_id=q3-onboarding. "
        "Or https://other.example.com/page, "
        "or (https://hub.example.com/x?play_id=kept)."
    )


@pytest.mark.django_db
def test_render_step_text_uses_context(play):
    step = PlayStep(
        play=play, position=1, action="in_app", config={"title": "Hi {{ member_name }}"}
    )

    text = render_step_text(step, "title", {"member_name": "Robin"})

    assert text == "Hi Robin"


@pytest.mark.django_db
def test_render_step_text_missing_key(play):
    step = PlayStep(play=play, position=2, action="in_app", config={})

    with pytest.raises(DomainError) as error:
        render_step_text(step, "title", {})

    assert error.value.message == (
        "The in_app step at position 2 of play 'welcome-2025' needs a text "
        "under 'title' in its config. Add it in admin, then run the play again."
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    "source",
    [
        "{% if %}",
        "{% load humanize %}{{ 1|intcomma }}",
        '{% include "base.html" %}',
    ],
    ids=["syntax", "load", "include"],
)
def test_render_step_text_rejects_template(play, source):
    step = PlayStep(play=play, position=3, action="email", config={"body": source})

    with pytest.raises(DomainError) as error:
        render_step_text(step, "body", {})

    assert error.value.message.startswith(
        "The 'body' template of the email step at position 3 of play "
        "'welcome-2025' is invalid: "
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("source", "reason"),
    [
        (
            "See {% url 'does-not-exist' %}",
            "it uses the url tag, which step templates cannot: it fails every "
            "run when the URL name does not exist. Write the page's full https "
            "URL instead",
        ),
        (
            "Hi {% debug %}",
            "it uses the debug tag, which step templates cannot: it would send "
            "the server's loaded modules and template context to members. "
            "Remove it",
        ),
    ],
    ids=["url", "debug"],
)
def test_render_step_text_rejects_tag(play, settings, source, reason):
    # The debug tag prints only when DEBUG is on.
    settings.DEBUG = True
    step = PlayStep(play=play, position=3, action="email", config={"body": source})

    with pytest.raises(DomainError) as error:
        render_step_text(step, "body", {})

    assert error.value.message == (
        "The 'body' template of the email step at position 3 of play "
        f"'welcome-2025' is invalid: {reason}. Fix it in admin, then run the "
        "play again."
    )
    assert error.value.code == "invalid_step_config"


@pytest.mark.django_db
def test_render_step_text_allowed_tags(play):
    source = (
        "{% if member_name %}Hi {{ member_name }}{% else %}Hello{% endif %}"
        "{% comment %}Only staff read this.{% endcomment %}, "
        "{% with team=account_name|upper %}{% firstof team 'team' %}{% endwith %}"
        "{% for letter in 'ab' %} {% cycle 'x' 'y' %}{{ letter }}{% endfor %}"
    )
    step = PlayStep(play=play, position=6, action="in_app", config={"title": source})

    text = render_step_text(
        step, "title", {"member_name": "Robin", "account_name": "Acme"}
    )

    assert text == "Hi Robin, ACME xa yb"


@pytest.mark.django_db
def test_render_step_text_rejects_empty_result(play):
    source = "{% if account_name %}Welcome, {{ account_name }}{% endif %}"
    step = PlayStep(play=play, position=4, action="email", config={"subject": source})

    with pytest.raises(DomainError) as error:
        render_step_text(step, "subject", {"account_name": ""})

    assert error.value.message == (
        "The 'subject' text of the email step at position 4 of play "
        "'welcome-2025' rendered empty, so nothing was sent. Put text outside "
        "its if tags, or add an else."
    )
    assert error.value.field == "subject"


@pytest.mark.django_db
def test_render_step_text_optional_may_render_empty(play):
    source = "{% if account_name %}For {{ account_name }}{% endif %}"
    step = PlayStep(play=play, position=5, action="in_app", config={"body": source})

    assert render_step_text(step, "body", {}, required=False) == ""


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("Hi {{ 0|stringformat:'c' }}", "contains a NUL character"),
        ("Hi {{ 55296|stringformat:'c' }}", "contains an unpaired UTF-16 surrogate"),
        (
            "{% for a, b in member_name %}{{ a }}{% endfor %}",
            "failed to render: Need 2 values to unpack in for loop; got 1.",
        ),
    ],
    ids=["nul", "surrogate", "unpacking"],
)
def test_render_step_text_rejects_unsendable_result(play, source, expected):
    step = PlayStep(play=play, position=6, action="in_app", config={"title": source})

    with pytest.raises(DomainError) as error:
        render_step_text(step, "title", {"member_name": "Robin"})

    assert expected in error.value.message
    assert error.value.code == "invalid_step_config"


@pytest.mark.django_db
def test_check_unknown_tag_drops_load_suggestion():
    errors = check_step_template(
        {"title": "Hi {% frobnicate %}"}, "title", required=True
    )

    assert errors == [
        (
            "title",
            "'title' is not a valid template: Invalid block tag on line 1: "
            "'frobnicate'. Fix its tags.",
        )
    ]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "source",
    [
        "{{ member_name|ljust:'999999999' }}",
        "{{ 1|floatformat:'99999999' }}",
        "{{ 1|stringformat:'0999999999d' }}",
    ],
    ids=["ljust", "floatformat", "stringformat"],
)
def test_render_step_text_rejects_huge_width(play, source):
    step = PlayStep(play=play, position=7, action="in_app", config={"title": source})

    with pytest.raises(DomainError) as error:
        render_step_text(step, "title", {"member_name": "Robin"})

    assert "asks for more than 1000 characters" in error.value.message


@pytest.mark.django_db
def test_render_step_text_keeps_sized_filters(play):
    source = (
        "[{{ member_name|ljust:'7' }}] {{ 2.5|floatformat }} {{ 3|stringformat:'03d' }}"
    )
    step = PlayStep(play=play, position=8, action="in_app", config={"title": source})

    assert (
        render_step_text(step, "title", {"member_name": "Robin"}) == "[Robin  ] 2.5 003"
    )
