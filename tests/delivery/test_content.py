import pytest
from django.template import Context, Engine

from apps.lifecycle.delivery.content import (
    add_play_params,
    build_play_link,
    render_step_text,
    tag_site_links,
)
from apps.lifecycle.delivery.render_limits import (
    MAX_LOOP_ITERATIONS,
    MAX_NOW_FORMAT_LENGTH,
    MAX_RENDERED_NODES,
    MAX_TEXT_LENGTH,
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
            "failed to render: the for tag unpacks 2 names from each item, but "
            "an item has 1; name as many as each item has.",
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


class CallCounter:
    """A context value that counts how often the template renders it."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        return ""


def render_failure(play, source: str, context: dict) -> str:
    step = PlayStep(play=play, position=9, action="email", config={"body": source})

    with pytest.raises(DomainError) as error:
        render_step_text(step, "body", context)

    assert error.value.code == "invalid_step_config"
    return error.value.message


def failed_to_render(reason: str) -> str:
    return (
        "The 'body' template of the email step at position 9 of play "
        f"'welcome-2025' failed to render: {reason}. Fix it in admin, then run "
        "the play again."
    )


LOOP_LIMIT_REASON = (
    "its loops ran more than 10,000 iterations; loop over fewer items or nest "
    "fewer loops"
)
LENGTH_LIMIT_REASON = (
    "its text grew past 100,000 characters; shorten it or loop over fewer items"
)
READ_LIMIT_REASON = (
    "its variables, filters and now tags read or formatted more than "
    "1,000,000 characters; use shorter values and formats, or read long values "
    "once, outside loops"
)


@pytest.mark.django_db
def test_render_step_text_stops_nested_loops(play):
    letters = "x" * 1000
    source = (
        f'{{% for a in "{letters}" %}}{{% for b in "{letters}" %}}'
        f'{{% for c in "{letters}" %}}{{{{ tick }}}}'
        "{% endfor %}{% endfor %}{% endfor %}"
    )
    tick = CallCounter()

    message = render_failure(play, source, {"tick": tick})

    assert message == failed_to_render(LOOP_LIMIT_REASON)
    # Iterations counted before the failure: the first a, then 9 b iterations
    # with all 1,000 c iterations each (9 * 1,001), then the 10th b, and c
    # iterations up to the cap. The iteration after the cap fails.
    completed_c = MAX_LOOP_ITERATIONS - 1 - 9 * 1001 - 1
    assert completed_c == 989
    assert tick.calls == 9 * 1000 + completed_c


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (
            "{% for letter in member_name %}{{ forloop.counter }}{{ letter }}"
            "{% if not forloop.last %},{% endif %}{% endfor %}",
            "1R,2o,3b",
        ),
        (
            "{% for letter in member_name reversed %}{{ forloop.counter0 }}"
            "{{ forloop.revcounter }}{{ forloop.revcounter0 }}{{ letter }}"
            "{{ forloop.first|yesno:'F,' }}{% endfor %}",
            "032bF121o210R",
        ),
        (
            "{% for name, url in links.items %}{{ name }}={{ url }};{% endfor %}",
            "docs=/docs/;help=/help/;",
        ),
        (
            "{% for a in 'ab' %}{% for b in 'xy' %}{{ forloop.parentloop.counter }}"
            "{{ a }}{{ b }} {% endfor %}{% endfor %}",
            "1ax 1ay 2bx 2by",
        ),
        (
            "{% for letter in account_name %}{{ letter }}{% empty %}no account"
            "{% endfor %}",
            "no account",
        ),
        (
            "{% for letter in missing %}{{ letter }}{% empty %}nothing{% endfor %}",
            "nothing",
        ),
        (
            "{% for letter in member_name %}{% cycle 'x' 'y' %}"
            "{% ifchanged %}{{ forloop.first }}{% endifchanged %}{% endfor %}",
            "xTrueyFalsex",
        ),
        (
            "{% regroup member_name|make_list by upper as groups %}"
            "{% for group in groups %}{{ group.grouper }}{{ group.list|length }}"
            "{% endfor %}",
            "R1O1B1",
        ),
    ],
    ids=[
        "counter",
        "reversed",
        "unpacking",
        "parentloop",
        "empty",
        "missing",
        "cycle-ifchanged",
        "regroup",
    ],
)
def test_render_step_text_loops_as_django(play, source, expected):
    context = {
        "member_name": "Rob",
        "account_name": "",
        "links": {"docs": "/docs/", "help": "/help/"},
    }
    step = PlayStep(play=play, position=9, action="email", config={"body": source})
    django_engine = Engine(autoescape=False)
    django_text = django_engine.from_string(source).render(
        Context(context, autoescape=False)
    )

    text = render_step_text(step, "body", context)

    assert text == expected
    assert text == django_text.strip()


@pytest.mark.django_db
def test_render_step_text_keeps_unpacking_error(play):
    source = "{% for a, b in member_name %}{{ a }}{% endfor %}"

    message = render_failure(play, source, {"member_name": "Robin"})

    assert message == failed_to_render(
        "the for tag unpacks 2 names from each item, but an item has 1; name as "
        "many as each item has"
    )


@pytest.mark.django_db
def test_render_step_text_allows_max_length(play):
    step = PlayStep(
        play=play, position=9, action="email", config={"body": "{{ long }}"}
    )

    text = render_step_text(step, "body", {"long": "x" * MAX_TEXT_LENGTH})

    assert len(text) == MAX_TEXT_LENGTH


@pytest.mark.django_db
@pytest.mark.parametrize(
    "source",
    [
        "{{ long }}!",
        "x" * (MAX_TEXT_LENGTH + 1),
        "{% for letter in 'abc' %}{{ long }}{% endfor %}",
        "{% with copy=long %}{{ copy }}{{ copy }}{% endwith %}",
    ],
    ids=["variable", "text", "loop", "with"],
)
def test_render_step_text_caps_length(play, source):
    message = render_failure(play, source, {"long": "x" * MAX_TEXT_LENGTH})

    assert message == failed_to_render(LENGTH_LIMIT_REASON)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("source", "expected_ticks"),
    [
        ("{% with a=1 %}{{ half }}{{ half }}{{ tick }}{% endwith %}", 0),
        ("{% if half %}{{ half }}{{ half }}{{ tick }}{% endif %}", 0),
        ("{% if missing %}{% else %}{{ half }}{{ half }}{{ tick }}{% endif %}", 0),
        ("{% filter upper %}{{ half }}{{ half }}{{ tick }}{% endfilter %}", 0),
        ("{% spaceless %}{{ half }}{{ half }}{{ tick }}{% endspaceless %}", 0),
        ("{% autoescape on %}{{ half }}{{ half }}{{ tick }}{% endautoescape %}", 0),
        (
            "{% for a in 'a' %}{% ifchanged a %}{{ half }}{{ half }}{{ tick }}"
            "{% endifchanged %}{% endfor %}",
            0,
        ),
        ("{% for a in '' %}{% empty %}{{ half }}{{ half }}{{ tick }}{% endfor %}", 0),
        # The first iteration's tick renders, the second half passes the cap.
        ("{% for a in 'ab' %}{{ half }}{{ tick }}{% endfor %}", 1),
    ],
    ids=[
        "with",
        "if",
        "else",
        "filter",
        "spaceless",
        "autoescape",
        "ifchanged",
        "empty",
        "for",
    ],
)
def test_render_step_text_stops_tags_at_length(play, source, expected_ticks):
    # Two halves pass the cap, so the tag stops rendering before the next node.
    tick = CallCounter()
    context = {"half": "x" * (MAX_TEXT_LENGTH // 2 + 1), "tick": tick}

    message = render_failure(play, source, context)

    assert message == failed_to_render(LENGTH_LIMIT_REASON)
    assert tick.calls == expected_ticks


@pytest.mark.django_db
def test_render_step_text_caps_rendered_nodes(play):
    letters = "x" * 6000
    source = f'{{% for a in "{letters}" %}}' + "{{ tick }}" * 20 + "{% endfor %}"
    tick = CallCounter()

    message = render_failure(play, source, {"tick": tick})

    assert message == failed_to_render(
        "it rendered more than 100,000 tags, variables and pieces of text; "
        "loop over fewer items or shorten what the loops repeat"
    )
    # The for tag itself is the first node rendered.
    assert tick.calls == MAX_RENDERED_NODES - 1


@pytest.mark.django_db
def test_render_step_text_counts_regroup_items(play):
    source = "{% regroup letters by upper as groups %}{{ groups|length }}"

    message = render_failure(play, source, {"letters": "x" * 20_000})

    assert message == failed_to_render(LOOP_LIMIT_REASON)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("source", "reason"),
    [
        (
            "{{ name|make_list|make_list|make_list|make_list|make_list }}",
            "the make_list filter returned 250,000 characters or items, more "
            "than 100,000; apply it to a shorter value",
        ),
        (
            "{{ name|make_list|join:name }}",
            "the join filter would build 159,600 characters, more than "
            "100,000; join fewer items or use a shorter separator",
        ),
        (
            "{% for a in name %}{{ long|wordcount }}{% endfor %}",
            READ_LIMIT_REASON,
        ),
    ],
    ids=["result", "join", "read"],
)
def test_render_step_text_caps_filters(play, source, reason):
    context = {"name": "x" * 400, "long": "y" * 90_000}

    message = render_failure(play, source, context)

    assert message == failed_to_render(reason)


@pytest.mark.django_db
def test_render_step_text_limit_in_if_condition(play):
    # The if tag turns errors in its condition into False; the limit holds.
    source = (
        "{% if name|make_list|make_list|make_list|make_list|make_list == 'x' %}"
        "yes{% else %}no{% endif %}{{ tick }}"
    )
    tick = CallCounter()

    message = render_failure(play, source, {"name": "x" * 400, "tick": tick})

    assert message == failed_to_render(
        "the make_list filter returned 250,000 characters or items, more than "
        "100,000; apply it to a shorter value"
    )
    # The render stops at the next node instead of rendering on.
    assert tick.calls == 0


@pytest.mark.django_db
def test_render_step_text_counts_method_lookups(play):
    # text.upper reads the whole text and the comparison returns little.
    source = "{% for a in name %}{% if long.upper == 'x' %}{% endif %}{% endfor %}"

    message = render_failure(play, source, {"name": "x" * 400, "long": "y" * 90_000})

    assert message == failed_to_render(READ_LIMIT_REASON)


@pytest.mark.django_db
def test_render_step_text_caps_variable_length(play):
    # hex doubles the length of the encoded name.
    source = "{{ name.encode.hex }}"

    message = render_failure(play, source, {"name": "x" * 60_000})

    assert message == failed_to_render(
        "the variable name.encode.hex has 120,000 characters or items, more "
        "than 100,000; use a shorter value"
    )


@pytest.mark.django_db
def test_render_step_text_quotes_long_literal_briefly(play):
    source = '{% firstof "' + "x" * 200_000 + '" %}'

    message = render_failure(play, source, {})

    assert message == failed_to_render(
        'the variable "' + "x" * 58 + "… has 200,000 characters or items, more "
        "than 100,000; use a shorter value"
    )


LONG_NOW_FORMAT = "r" * (MAX_NOW_FORMAT_LENGTH + 1)
LONG_NOW_FORMAT_REASON = (
    "the now tag's format has 101 characters, more than 100; use a shorter "
    'format, such as "j F Y"'
)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "source",
    [
        f'{{% now "{LONG_NOW_FORMAT}" %}}',
        f'{{% now "{LONG_NOW_FORMAT}" as t %}}{{{{ t }}}}',
    ],
    ids=["output", "as"],
)
def test_render_step_text_rejects_long_now_format(play, source):
    step = PlayStep(play=play, position=9, action="email", config={"body": source})

    with pytest.raises(DomainError) as error:
        render_step_text(step, "body", {})

    assert error.value.message == (
        "The 'body' template of the email step at position 9 of play "
        f"'welcome-2025' is invalid: {LONG_NOW_FORMAT_REASON}. Fix it in admin, "
        "then run the play again."
    )


@pytest.mark.django_db
def test_render_step_text_allows_max_now_format(play):
    # A backslash escapes a format character, so each pair prints one letter.
    now_format = "\\a" * (MAX_NOW_FORMAT_LENGTH // 2)
    assert len(now_format) == MAX_NOW_FORMAT_LENGTH
    step = PlayStep(
        play=play,
        position=9,
        action="email",
        config={"body": f'{{% now "{now_format}" %}}{{% now "Y" as year %}}'},
    )

    text = render_step_text(step, "body", {})

    assert text == "a" * (MAX_NOW_FORMAT_LENGTH // 2)


@pytest.mark.django_db
def test_render_step_text_counts_now_text(play):
    # Each "r" formats a whole date of 31 characters, so 400 iterations of a
    # format of 100 would format 1,240,000 characters and render none.
    now_format = "r" * MAX_NOW_FORMAT_LENGTH
    source = (
        "{% for a in '" + "x" * 400 + "' %}"
        f'{{% now "{now_format}" as t %}}'
        "{% endfor %}"
    )

    message = render_failure(play, source, {})

    assert message == failed_to_render(READ_LIMIT_REASON)


@pytest.mark.django_db
def test_check_step_template_rejects_long_now_format():
    errors = check_step_template(
        {"body": f'{{% now "{LONG_NOW_FORMAT}" as t %}}{{{{ t }}}}'},
        "body",
        required=True,
    )

    assert errors == [
        (
            "body",
            f"'body' is not a valid template: {LONG_NOW_FORMAT_REASON}. Fix its tags.",
        )
    ]


@pytest.mark.django_db
def test_render_step_text_rejects_deep_lookup(play):
    step = PlayStep(
        play=play,
        position=9,
        action="email",
        config={"body": "{{ name.encode.hex.encode.hex }}"},
    )

    with pytest.raises(DomainError) as error:
        render_step_text(step, "body", {"name": "Robin"})

    assert error.value.message == (
        "The 'body' template of the email step at position 9 of play "
        "'welcome-2025' is invalid: the variable name.encode.hex.encode.hex has "
        "5 names, more than 4; set part of it with a with tag and use that "
        "name. Fix it in admin, then run the play again."
    )


@pytest.mark.django_db
def test_check_step_template_rejects_deep_lookup():
    errors = check_step_template(
        {"body": "{{ links.docs.encode.hex.upper }}"}, "body", required=True
    )

    assert errors == [
        (
            "body",
            "'body' is not a valid template: the variable "
            "links.docs.encode.hex.upper has 5 names, more than 4; set part of "
            "it with a with tag and use that name. Fix its tags.",
        )
    ]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (
            "{% for a in '" + "x" * 200 + "' %}{% for b in '" + "x" * 100 + "' %}"
            "{{ a }}{% endfor %}{% endfor %}",
            "'body' runs at least 20,200 loop iterations, more than the 10,000 "
            "one render may run. Loop over fewer items or nest fewer loops.",
        ),
        (
            "{% with a=1 %}{% spaceless %}{% for a in '" + "x" * 10_001 + "' %}"
            "{% endfor %}{% endspaceless %}{% endwith %}",
            "'body' runs at least 10,001 loop iterations, more than the 10,000 "
            "one render may run. Loop over fewer items or nest fewer loops.",
        ),
        (
            "{% for a in '" + "x" * 100 + "' %}" + "y" * 1001 + "{% endfor %}",
            "'body' renders at least 100,100 characters, more than the 100,000 "
            "a step text may have. Shorten it.",
        ),
    ],
    ids=["nested", "inside-tags", "length"],
)
def test_check_step_template_rejects_limits(source, expected):
    errors = check_step_template({"body": source}, "body", required=True)

    assert errors == [("body", expected)]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "source",
    [
        "{% for a in '" + "x" * 100 + "' %}{% for b in '" + "x" * 99 + "' %}"
        "{{ a }}{% endfor %}{% endfor %}",
        # Only members with a name would run the loop, so it fails at run time.
        "{% if member_name %}{% for a in '" + "x" * 20_000 + "' %}{% endfor %}"
        "{% endif %}",
        # An empty member_name skips the inner loop.
        "{% for letter in member_name %}{% for a in '" + "x" * 20_000 + "' %}"
        "{% endfor %}{% endfor %}",
        "{% for a in member_name %}{% empty %}" + "y" * 100_001 + "{% endfor %}",
    ],
    ids=["under-limit", "inside-if", "inside-variable-loop", "one-branch"],
)
def test_check_step_template_accepts_possible_renders(source):
    assert check_step_template({"body": source}, "body", required=True) == []
