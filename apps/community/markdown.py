"""Render member-written Markdown to HTML that is safe to show to others.

Python-Markdown turns the text into HTML, raw HTML included, and nh3 (the
Ammonia sanitiser) then keeps only an allow-list of tags and attributes, so
the sanitiser alone decides what reaches the page.
"""

import functools
import re
import threading

import markdown as markdown_lib
import nh3
from django.utils.safestring import SafeString, mark_safe

MARKDOWN_EXTENSIONS = ["fenced_code", "tables", "sane_lists", "nl2br"]
# Python-Markdown 3.x marks table column alignment with a style attribute
# unless configured to use the old align attribute, and styles are not allowed.
MARKDOWN_EXTENSION_CONFIGS = {"tables": {"use_align_attribute": True}}

ALLOWED_TAGS = {
    "p",
    "br",
    "strong",
    "em",
    "code",
    "pre",
    "blockquote",
    "ul",
    "ol",
    "li",
    "h3",
    "h4",
    "h5",
    "h6",
    "a",
    "img",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
    "hr",
    "del",
}
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title"},
    "ol": {"start"},
    "th": {"align"},
    "td": {"align"},
}
# Tags whose text is dropped with them, not kept as plain text.
DROPPED_CONTENT_TAGS = {"script", "style"}
URL_SCHEMES = {"http", "https", "mailto"}
LINK_REL = "nofollow ugc noopener"

# The page headings are h1 and h2, so post headings start at h3.
HEADING_SHIFT = 2
HEADING_TAG = re.compile(r"<(/?)h([1-6])(?=[\s/>])", re.IGNORECASE)


def _demote_heading(match: re.Match) -> str:
    level = min(int(match.group(2)) + HEADING_SHIFT, 6)
    return f"<{match.group(1)}h{level}"


def _is_same_origin_path(url: str) -> bool:
    # Browsers read "//host" and "/\host" as a link to another host.
    return url.startswith("/") and not url.startswith(("//", "/\\"))


def _filter_attribute(tag: str, attribute: str, value: str) -> str | None:
    """Drop image sources that are neither https nor a path on this site."""
    if tag == "img" and attribute == "src":
        url = value.strip()
        if url.lower().startswith("https://") or _is_same_origin_path(url):
            return value
        return None
    if tag == "a" and attribute == "href" and value.strip().startswith("//"):
        return None
    return value


def sanitise_html(html: str) -> str:
    """Return the HTML with every tag, attribute and URL off the allow-list removed."""
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        clean_content_tags=DROPPED_CONTENT_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        attribute_filter=_filter_attribute,
        url_schemes=URL_SCHEMES,
        link_rel=LINK_REL,
        strip_comments=True,
    )


_converters = threading.local()


def _get_converter() -> markdown_lib.Markdown:
    """Return this thread's Markdown converter, built on first use.

    Building one loads the extensions and costs more than converting a
    typical post, so each thread keeps its own, because an instance is not
    safe to share between threads. `reset()` clears the previous text's state.
    """
    converter = getattr(_converters, "converter", None)
    if converter is None:
        converter = markdown_lib.Markdown(
            extensions=MARKDOWN_EXTENSIONS,
            extension_configs=MARKDOWN_EXTENSION_CONFIGS,
            output_format="html",
        )
        _converters.converter = converter
    return converter.reset()


# The output depends on the text alone, so a process keeps the HTML of the
# posts it rendered last: a popular topic's posts are converted once, not on
# every view. Only texts of at most RENDER_CACHE_MAX_LENGTH characters are
# kept, so the cache contains at most RENDER_CACHE_SIZE such texts and their
# HTML.
RENDER_CACHE_SIZE = 512
RENDER_CACHE_MAX_LENGTH = 8_000


def render_markdown(text: str) -> SafeString:
    """Render Markdown to sanitised HTML, safe to insert into a page."""
    text = text or ""
    if len(text) <= RENDER_CACHE_MAX_LENGTH:
        return _render_markdown_cached(text)
    return _render_markdown(text)


@functools.lru_cache(maxsize=RENDER_CACHE_SIZE)
def _render_markdown_cached(text: str) -> SafeString:
    return _render_markdown(text)


def _render_markdown(text: str) -> SafeString:
    html = _get_converter().convert(text)
    html = HEADING_TAG.sub(_demote_heading, html)
    # mark_safe is sound only because nh3 has just sanitised the HTML.
    return mark_safe(sanitise_html(html))
