import re

from django.contrib.staticfiles import finders
from django.urls import reverse

from tests import factories


def test_htmx_static_file_found():
    assert finders.find("vendor/htmx/htmx.min.js") is not None


def test_site_css_static_file_found():
    assert finders.find("css/site.css") is not None


def test_base_layout_has_skip_link_and_main(member_client):
    response = member_client.get(reverse("community:spaces"))

    html = response.content.decode()
    assert '<a class="skip-link" href="#main">' in html
    assert '<main id="main"' in html
    assert '<html lang="en">' in html


def test_base_layout_loads_local_htmx_and_css(member_client):
    html = member_client.get(reverse("community:spaces")).content.decode()

    assert 'src="/static/vendor/htmx/htmx.min.js"' in html
    assert 'href="/static/css/site.css"' in html
    assert "https://" not in html


def test_base_layout_sends_csrf_header_for_htmx(member_client):
    html = member_client.get(reverse("community:spaces")).content.decode()

    match = re.search(r"<body hx-headers='\{\"X-CSRFToken\": \"(\w+)\"\}'>", html)
    assert match is not None
    assert len(match.group(1)) == 64


def test_nav_member_sees_no_staff_links(member_client):
    html = member_client.get(reverse("community:spaces")).content.decode()

    assert reverse("community:spaces") in html
    assert reverse("portal:home") in html
    assert reverse("reporting:dashboard") not in html
    assert reverse("admin:index") not in html
    assert reverse("api-docs") not in html
    assert "Sign out" in html


def test_nav_staff_sees_staff_links(staff_client):
    html = staff_client.get(reverse("community:spaces")).content.decode()

    assert reverse("reporting:dashboard") in html
    assert reverse("admin:index") in html
    assert reverse("api-docs") in html


def test_nav_marks_current_section(member_client):
    html = member_client.get(reverse("community:spaces")).content.decode()

    expected = f'<a href="{reverse("community:spaces")}" aria-current="page">'
    assert expected in html


def test_nav_anonymous_sees_sign_in(client, db):
    html = client.get(reverse("community:spaces")).content.decode()

    assert "Sign in" in html
    assert "Sign out" not in html


def test_login_page_uses_site_layout(client, db):
    response = client.get(reverse("account_login"))

    html = response.content.decode()
    assert response.status_code == 200
    assert '<a class="skip-link" href="#main">' in html
    assert "Sign In · RM6 Loyalty Hub</title>" in re.sub(r"\s+", " ", html)
    assert 'name="login"' in html
    assert 'name="password"' in html


def test_signup_page_uses_site_layout(client, db):
    response = client.get(reverse("account_signup"))

    html = response.content.decode()
    assert response.status_code == 200
    assert 'href="/static/css/site.css"' in html
    assert 'name="password1"' in html


def test_sign_in_through_allauth_records_sign_in(client, db):
    member = factories.MemberFactory()

    response = client.post(
        reverse("account_login"),
        {"login": member.user.email, "password": factories.PASSWORD},
    )

    assert response.status_code == 302
    assert response.url == reverse("portal:home")
    assert member.events.filter(kind="membership.signed_in").count() == 1


def test_not_found_page_uses_site_layout(client, db):
    response = client.get("/community/no-such-space/")

    html = response.content.decode()
    assert response.status_code == 404
    assert "Page not found" in html
    assert '<a class="skip-link" href="#main">' in html


def test_login_page_sign_in_link_has_no_next(client, db):
    html = client.get(reverse("account_login")).content.decode()

    assert f'href="{reverse("account_login")}">Sign in</a>' in html


def test_nav_sign_in_link_returns_to_page(client, db):
    html = client.get(reverse("community:spaces")).content.decode()

    expected = f'href="{reverse("account_login")}?next=/community/">Sign in</a>'
    assert expected in html


def test_base_layout_links_svg_favicon(member_client):
    html = member_client.get(reverse("community:spaces")).content.decode()

    link = '<link rel="icon" href="/static/img/favicon.svg" type="image/svg+xml">'
    assert link in html


def test_favicon_ico_redirects_to_svg(client):
    response = client.get("/favicon.ico")

    assert response.status_code == 301
    assert response["Location"] == "/static/img/favicon.svg"


def test_favicon_svg_static_file_found():
    assert finders.find("img/favicon.svg") is not None
