import pytest

from apps.community.markdown import render_markdown


def test_render_markdown_basic_formatting():
    html = render_markdown("**bold** and *em*\n\n- one\n- two")

    assert "<strong>bold</strong>" in html
    assert "<em>em</em>" in html
    assert "<li>one</li>" in html


def test_render_markdown_demotes_top_headings():
    html = render_markdown("# Big\n\n## Medium\n\n#### Small")

    assert html == "<h3>Big</h3>\n<h4>Medium</h4>\n<h6>Small</h6>"


def test_render_markdown_fenced_code_escapes_html():
    html = render_markdown("```\n<script>alert(1)</script>\n```")

    assert "<pre><code>&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>" not in html


@pytest.mark.parametrize(
    "text",
    [
        "<script>alert(1)</script>",
        "<SCRIPT SRC=//evil.test/x.js></SCRIPT>",
        "<style>body{display:none}</style>",
        "<svg onload=alert(1)>",
        "<iframe src=https://evil.test></iframe>",
    ],
)
def test_render_markdown_drops_script_style_and_unknown_tags(text):
    html = render_markdown(text + "\n\nafter")

    assert "<script" not in html.lower()
    assert "<style" not in html.lower()
    assert "<svg" not in html.lower()
    assert "<iframe" not in html.lower()
    assert "alert" not in html
    assert "after" in html


@pytest.mark.parametrize(
    "text",
    [
        '<img src="https://cdn.test/a.png" onerror="alert(1)">',
        '<a href="https://ok.test" onclick="alert(1)">x</a>',
        "<p onmouseover=alert(1)>x</p>",
    ],
)
def test_render_markdown_drops_event_attributes(text):
    html = render_markdown(text)

    assert "onerror" not in html
    assert "onclick" not in html
    assert "onmouseover" not in html
    assert "alert" not in html


def test_render_markdown_drops_style_attribute():
    html = render_markdown('<p style="position:fixed">x</p>')

    assert html == "<p>x</p>"


@pytest.mark.parametrize(
    "text",
    [
        "[click](javascript:alert(1))",
        "[click](JavaScript:alert(1))",
        "[click](data:text/html;base64,PHNjcmlwdD4=)",
        '<a href="javascript:alert(1)">click</a>',
        '<a href="java&#x73;cript:alert(1)">click</a>',
        '<a href="jav&#x09;ascript:alert(1)">click</a>',
        '<a href="data:text/html,<script>alert(1)</script>">click</a>',
        "[click](vbscript:msgbox(1))",
    ],
)
def test_render_markdown_removes_unsafe_link_urls(text):
    html = render_markdown(text)

    assert "href" not in html
    assert "script:" not in html.lower()
    assert "data:" not in html
    assert "click" in html


@pytest.mark.parametrize(
    "text",
    [
        "![x](data:image/png;base64,iVBORw0KGgo=)",
        '<img src="javascript:alert(1)">',
        '<img src="data:image/svg+xml,<svg onload=alert(1)>">',
    ],
)
def test_render_markdown_removes_unsafe_image_urls(text):
    html = render_markdown(text)

    assert "src" not in html
    assert "data:" not in html


def test_render_markdown_nested_markup_is_sanitised():
    html = render_markdown(
        '<a href="https://ok.test"><img src=x onerror=alert(1)>'
        '<a href="javascript:alert(2)">inner</a></a>'
    )

    assert "onerror" not in html
    assert "javascript" not in html
    assert "alert" not in html


def test_render_markdown_http_image_rejected():
    html = render_markdown("![chart](http://cdn.test/chart.png)")

    assert html == '<p><img alt="chart"></p>'


def test_render_markdown_https_image_kept():
    html = render_markdown("![chart](https://cdn.test/chart.png)")

    assert html == '<p><img alt="chart" src="https://cdn.test/chart.png"></p>'


def test_render_markdown_same_origin_image_kept():
    html = render_markdown("![chart](/media/chart.png)")

    assert html == '<p><img alt="chart" src="/media/chart.png"></p>'


@pytest.mark.parametrize("url", ["//evil.test/a.png", "/\\evil.test/a.png"])
def test_render_markdown_protocol_relative_image_removed(url):
    html = render_markdown(f'<img src="{url}">')

    assert html == "<p><img></p>"


def test_render_markdown_links_get_rel():
    html = render_markdown("[docs](https://docs.test/)")

    assert html == (
        '<p><a href="https://docs.test/" rel="nofollow ugc noopener">docs</a></p>'
    )


def test_render_markdown_mailto_kept():
    html = render_markdown("[write](mailto:help@vendor.test)")

    assert 'href="mailto:help@vendor.test"' in html


def test_render_markdown_author_rel_replaced():
    html = render_markdown('<a href="https://ok.test" rel="opener">x</a>')

    assert html == (
        '<p><a href="https://ok.test" rel="nofollow ugc noopener">x</a></p>'
    )


def test_render_markdown_table_alignment_without_style():
    html = render_markdown("| a | b |\n|:--|--:|\n| 1 | 2 |")

    assert '<th align="left">a</th>' in html
    assert "style" not in html


def test_render_markdown_newline_becomes_break():
    assert render_markdown("one\ntwo") == "<p>one<br>\ntwo</p>"


def test_markdown_filter_in_template():
    from django.template import Context, Template

    template = Template("{% load community_markdown %}{{ body|markdown }}")

    html = template.render(Context({"body": "<b onclick=x>hi</b> **there**"}))

    assert html == "<p>hi <strong>there</strong></p>"
