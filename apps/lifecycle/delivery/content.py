"""Text and links of play messages: step templates and play-tagged URLs.

Staff write the title, subject and body of a step as Django template strings
in the step's config. They render in an engine of their own, which has no
template directories, no tag libraries to load, Django's default filters and
only the built-in tags in ALLOWED_TAGS. The context contains plain strings
only. A step template can therefore neither include other templates nor reach
model attributes. The limits in render_limits bound the work and output of
one render.
"""

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from django.conf import settings
from django.template import (
    Context,
    Engine,
    Library,
    TemplateSyntaxError,
    defaultfilters,
    defaulttags,
)

from apps.lifecycle.delivery.render_limits import (
    LIMITED_TAGS,
    LimitedTemplate,
    fail_render,
    limit_filter,
)
from apps.lifecycle.models import Play, PlayStep
from apps.lifecycle.storable import find_unstorable
from apps.membership.models import Member
from rm6.errors import DomainError

PLAY_PARAMS = ("play_id", "campaign_id")

# An http(s) URL in plain text, without the punctuation that usually ends
# the sentence around it.
URL_PATTERN = re.compile(r"https?://[^\s<>\"']+[^\s<>\"'.,;:!?)\]]")

# The built-in tags that step templates may use. Step texts are messages
# that staff write and that render with plain strings (names and links), so
# they get the tags that choose, repeat, name and format text. Django 5.2's
# other built-in tags are in REJECTED_TAGS, with the reason and what to write
# instead. They include other templates, load tag libraries, look up site
# URLs, need a request, print the server's state, or make no sense in a
# message. A tag in neither list fails to parse as an unknown tag.
ALLOWED_TAGS = (
    "autoescape",
    "comment",
    "cycle",
    "filter",
    "firstof",
    "for",
    "if",
    "ifchanged",
    "now",
    "regroup",
    "resetcycle",
    "spaceless",
    "templatetag",
    "verbatim",
    "with",
)
# The error message for each rejected tag. It follows the template's key, as
# in "'body' uses the url tag, ...".
OTHER_TEMPLATES = (
    "which step templates cannot: they render without other templates. "
    "Write the text in place."
)
REJECTED_TAGS = {
    "block": f"uses the block tag, {OTHER_TEMPLATES}",
    "csrf_token": (
        "uses the csrf_token tag, which step templates cannot: messages "
        "contain no form to protect. Remove it."
    ),
    "debug": (
        "uses the debug tag, which step templates cannot: it would send the "
        "server's loaded modules and template context to members. Remove it."
    ),
    "extends": f"uses include or extends, {OTHER_TEMPLATES}",
    "include": f"uses include or extends, {OTHER_TEMPLATES}",
    "load": (
        "loads a tag library, which step templates cannot. Remove the load "
        "tag and use Django's built-in tags and filters."
    ),
    "lorem": (
        "uses the lorem tag, which step templates cannot: members would get "
        "placeholder text. Write the text itself."
    ),
    "querystring": (
        "uses the querystring tag, which step templates cannot: steps render "
        "without a request. Write the link with its query string."
    ),
    "url": (
        "uses the url tag, which step templates cannot: it fails every run "
        "when the URL name does not exist. Write the page's full https URL "
        "instead."
    ),
    "widthratio": (
        "uses the widthratio tag, which step templates cannot: their context "
        "contains no numbers to scale. Write the number itself."
    ),
}


class RejectedTagError(TemplateSyntaxError):
    """A step template uses a built-in tag outside ALLOWED_TAGS."""

    def __init__(self, problem: str) -> None:
        super().__init__(f"it {problem}")
        self.problem = problem


def _reject_tag(problem: str):
    def compile_rejected_tag(parser, token):
        raise RejectedTagError(problem)

    return compile_rejected_tag


# Filters whose argument sets a width or a number of digits. A step text
# never needs more than MAX_FILTER_WIDTH, and a width of a billion would
# build a string of a gigabyte in the worker.
SIZED_FILTERS = ("ljust", "rjust", "center", "floatformat", "stringformat")
MAX_FILTER_WIDTH = 1000
NUMBER_PATTERN = re.compile(r"\d+")


def _limit_width(name: str):
    filter_function = defaultfilters.register.filters[name]

    def limited(value, arg=None):
        if arg is None:
            return filter_function(value)
        if any(
            int(number) > MAX_FILTER_WIDTH
            for number in NUMBER_PATTERN.findall(str(arg))
        ):
            fail_render(
                f"the {name} filter's argument {arg!r} asks for more than "
                f"{MAX_FILTER_WIDTH} characters; use a smaller number"
            )
        return filter_function(value, arg)

    return limited


def _build_step_tags() -> Library:
    library = Library()
    for name in ALLOWED_TAGS:
        library.tag(name, LIMITED_TAGS.get(name) or defaulttags.register.tags[name])
    for name, problem in REJECTED_TAGS.items():
        library.tag(name, _reject_tag(problem))
    # Registered after Django's default filters, so these replace them.
    for name, function in defaultfilters.register.filters.items():
        if name in SIZED_FILTERS:
            function = _limit_width(name)
        library.filter(name, limit_filter(name, function))
    return library


class StepTemplateEngine(Engine):
    """A template engine with only the tags and filters step templates may use.

    Both the save-time checks and the run-time render parse with it, so a
    rejected tag fails the same way in both. Its templates are LimitedTemplate
    objects, whose render fails once it passes a limit in render_limits.
    """

    # Django's default filters only. The tags come from _build_step_tags,
    # which registers the allowed tags and rejects the others.
    default_builtins = ["django.template.defaultfilters"]

    def get_template_builtins(self, builtins):
        return [*super().get_template_builtins(builtins), _build_step_tags()]

    def from_string(self, template_code: str) -> LimitedTemplate:
        return LimitedTemplate(template_code, engine=self)


_engine: Engine | None = None


def _get_engine() -> Engine:
    global _engine
    if _engine is None:
        # Plain text: HTML versions escape the rendered text afterwards.
        _engine = StepTemplateEngine(dirs=[], app_dirs=False, autoescape=False)
    return _engine


def add_play_params(url: str, play: Play) -> str:
    """Return the URL with the play's ID and campaign ID in its query string.

    Other query parameters and the fragment are kept. A `play_id` or
    `campaign_id` already in the URL is replaced, and an empty URL stays
    empty.
    """
    if not url:
        return url
    parts = urlsplit(url)
    query = [
        (key, value)
        for key, value in parse_qsl(parts.query, keep_blank_values=True)
        if key not in PLAY_PARAMS
    ]
    query.append(("play_id", play.play_id))
    if play.campaign_id:
        query.append(("campaign_id", play.campaign_id))
    return urlunsplit(parts._replace(query=urlencode(query)))


def _is_path(url: str) -> bool:
    """Return whether `url` is a path on this site ("//host" is another site)."""
    return url.startswith("/") and not url.startswith("//")


def build_absolute_url(url: str) -> str:
    """Return the URL made absolute against RM6_SITE_URL when it is a path."""
    if not _is_path(url):
        return url
    return settings.SITE_URL.rstrip("/") + url


def is_site_link(url: str) -> bool:
    """Return whether `url` is a path here or an absolute URL of RM6_SITE_URL."""
    if _is_path(url):
        return True
    site_url = settings.SITE_URL.rstrip("/")
    return url == site_url or url.startswith(site_url + "/")


def build_play_link(url: str, play: Play) -> str:
    """Return the absolute URL of a link in a play email.

    A link to this site gets the play's parameters. A link to another site is
    left as it is, as in `tag_site_links`.
    """
    url = build_absolute_url(url)
    return add_play_params(url, play) if is_site_link(url) else url


def check_link(url: str) -> str | None:
    """Return why `url` cannot be a play link, or None when it can.

    A link is a path on this site (starting with /) or an http or https URL.
    """
    if _is_path(url):
        return None
    parts = urlsplit(url)
    if parts.scheme in ("http", "https") and parts.netloc:
        return None
    return (
        f"{url!r} is not a link members can follow: use a path here such as "
        "/community/, or a full http or https URL."
    )


def tag_site_links(text: str, play: Play) -> str:
    """Add the play's parameters to every link to this site found in `text`.

    Step authors often paste full links into an email body. Links to other
    sites are left as they are, because their owners do not read these
    parameters. Links that already carry a `play_id` are left too.
    """

    def tag(match: re.Match) -> str:
        url = match.group(0)
        query = parse_qsl(urlsplit(url).query, keep_blank_values=True)
        if not is_site_link(url) or any(key == "play_id" for key, _ in query):
            return url
        return add_play_params(url, play)

    return URL_PATTERN.sub(tag, text)


def build_template_context(
    *, member: Member | None, account_name: str = "", **links: object
) -> dict:
    """Return the context that step templates render with.

    `member_name` and `account_name` are strings; the keyword arguments add
    links, such as `url` and `unsubscribe_url`, and the `links` mapping.
    """
    if member is not None and not account_name and member.account_id:
        account_name = member.account.name
    return {
        "member_name": member.name if member is not None else "",
        "account_name": account_name,
        **links,
    }


def render_step_text(
    step: PlayStep, key: str, context: dict, *, required: bool = True
) -> str:
    """Render the step config's template string under `key`.

    Raise DomainError when a required key is missing or empty, when the
    template does not parse, fails to render or passes a limit in
    render_limits, or when a required text renders empty, as an if tag
    without an else can.
    """
    source = step.config.get(key, "")
    if not isinstance(source, str) or (required and not source.strip()):
        raise DomainError(
            f"The {step.action} step at position {step.position} of play "
            f"{step.play.play_id!r} needs a text under {key!r} in its config. "
            "Add it in admin, then run the play again.",
            field=key,
            code="invalid_step_config",
        )
    try:
        template = _get_engine().from_string(source)
        text = template.render(Context(context, autoescape=False))
    except TemplateSyntaxError as error:
        reason = str(error).rstrip(".")
        raise DomainError(
            f"The {key!r} template of the {step.action} step at position "
            f"{step.position} of play {step.play.play_id!r} is invalid: {reason}. "
            "Fix it in admin, then run the play again.",
            field=key,
            code="invalid_step_config",
        ) from None
    except (ValueError, TypeError, ArithmeticError, LookupError) as error:
        # Tags that parse can still fail on the context, such as a for tag
        # that unpacks a name into two variables, and any render can pass a
        # limit in render_limits, which raises RenderLimitError (a ValueError).
        raise DomainError(
            f"The {key!r} template of the {step.action} step at position "
            f"{step.position} of play {step.play.play_id!r} failed to render: "
            f"{error}. Fix it in admin, then run the play again.",
            field=key,
            code="invalid_step_config",
        ) from None
    problem = find_unstorable(text)
    if problem:
        # A filter such as stringformat:"c" can make text PostgreSQL rejects.
        raise DomainError(
            f"The {key!r} text of the {step.action} step at position "
            f"{step.position} of play {step.play.play_id!r} {problem}, so "
            "nothing was sent. Fix the template in admin.",
            field=key,
            code="invalid_step_config",
        )
    text = text.strip()
    if required and not text:
        raise DomainError(
            f"The {key!r} text of the {step.action} step at position "
            f"{step.position} of play {step.play.play_id!r} rendered empty, so "
            "nothing was sent. Put text outside its if tags, or add an else.",
            field=key,
            code="invalid_step_config",
        )
    return text
