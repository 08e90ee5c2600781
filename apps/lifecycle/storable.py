"""Checks that decoded JSON can be stored in PostgreSQL text and jsonb.

JSON allows text that PostgreSQL rejects: the NUL character, and unpaired
UTF-16 surrogates such as "\\ud800". Python's json module also reads NaN,
Infinity and numbers too large for a float, such as 1e400, as non-finite
floats, which jsonb rejects. Deep nesting is valid JSON but no event
property or step config needs it. Ingestion checks each row with this
before writing, and the play admin checks each step config, so bad input
gets an error that names the fix instead of a server error.
"""

import math

MAX_DEPTH = 32
TOO_DEEP = (
    f"is nested deeper than {MAX_DEPTH} levels; flatten it to {MAX_DEPTH} "
    "levels or fewer"
)


def find_unstorable(value: object, *, depth: int = 0) -> str | None:
    """Return why `value` cannot be stored, or None when it can."""
    if depth > MAX_DEPTH:
        return TOO_DEEP
    if isinstance(value, str):
        return _check_text(value)
    if isinstance(value, float) and not math.isfinite(value):
        return (
            f"contains the non-finite number {value} (from NaN, Infinity or a "
            "number too large for a float, such as 1e400), which cannot be "
            "stored; use a finite number or null"
        )
    if isinstance(value, dict):
        for key, item in value.items():
            problem = _check_text(str(key)) or find_unstorable(item, depth=depth + 1)
            if problem:
                return problem
    elif isinstance(value, list | tuple):
        for item in value:
            problem = find_unstorable(item, depth=depth + 1)
            if problem:
                return problem
    return None


def _check_text(text: str) -> str | None:
    if "\x00" in text:
        return "contains a NUL character (\\u0000), which cannot be stored; remove it"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return (
            "contains an unpaired UTF-16 surrogate, which is not valid Unicode; "
            "remove it or complete the surrogate pair"
        )
    return None
