"""Write keys of Segment sources: generating, hashing and checking them."""

import base64
import binascii
import hashlib
import secrets

from django.http import HttpRequest

from apps.lifecycle.models import SegmentSource

WRITE_KEY_BYTES = 32
WRITE_KEY_PREFIX_LENGTH = 8


def generate_write_key() -> str:
    """Return a new random write key: 43 URL-safe characters, 256 bits."""
    return secrets.token_urlsafe(WRITE_KEY_BYTES)


def hash_write_key(write_key: str) -> str:
    """Return the hex SHA-256 digest under which a write key is stored."""
    return hashlib.sha256(write_key.encode()).hexdigest()


def read_basic_auth_write_key(request: HttpRequest) -> str | None:
    """Return the write key of an `Authorization: Basic` header, if any.

    Segment clients send base64("WRITE_KEY:"): the key as the user name and
    an empty password. A header that is present but malformed returns "",
    which matches no source.
    """
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() != "basic":
        return ""
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return ""
    write_key, _, _password = decoded.partition(":")
    return write_key


def get_source_for_write_key(write_key: object) -> SegmentSource | None:
    """Return the source a write key belongs to, active or not, or None.

    An unknown key and a value that is not a string both return None, so
    callers cannot tell the two apart in their response. The caller checks
    `is_active`.
    """
    if not isinstance(write_key, str) or not write_key:
        return None
    # Only digests are stored and compared, so the timing of the lookup
    # reveals nothing about the stored key itself.
    digest = hash_write_key(write_key)
    return SegmentSource.objects.filter(write_key_digest=digest).first()
