"""Settings for the community benchmark's server: production plus one bench view.

The production settings are used unchanged (DEBUG off, cached templates,
the full middleware stack), except that the URLconf adds the minimal view
that the topic page is compared with, and plain HTTP on 127.0.0.1 is allowed.
"""

from rm6.settings.production import *  # noqa: F403

ROOT_URLCONF = "bench.community_urls"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
