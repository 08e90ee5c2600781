"""The receiver's check from docs/webhooks.md, kept separate from the sender.

Tests verify real requests with this copy of the documented recipe, so a
change to the signing that the document does not describe fails them.
"""

import hashlib
import hmac
import time

TOLERANCE_SECONDS = 300


def is_authentic(secret: str, headers, body: bytes) -> bool:
    """Return whether a request from RM6 Loyalty Hub is signed and recent."""
    timestamp = headers.get("X-RM6-Timestamp", "")
    signature = headers.get("X-RM6-Signature", "")
    try:
        sent_at = int(timestamp)
    except ValueError:
        return False
    if abs(time.time() - sent_at) > TOLERANCE_SECONDS:
        return False
    signed = timestamp.encode() + b"." + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    # Compare bytes: compare_digest raises TypeError on non-ASCII strings.
    expected = ("sha256=" + digest).encode()
    return hmac.compare_digest(expected, signature.encode())
