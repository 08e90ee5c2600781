import json
import logging
import sys

from django.conf import settings
from django.utils.module_loading import import_string


def _json_formatter() -> logging.Formatter:
    config = dict(settings.LOGGING["formatters"]["json"])
    return import_string(config.pop("()"))(**config)


def test_json_log_line_keeps_quotes_and_newlines_inside_the_message():
    record = logging.LogRecord(
        "rm6.test", logging.WARNING, __file__, 1, 'said "hi"\nthen left', None, None
    )

    line = _json_formatter().format(record)

    assert "\n" not in line
    parsed = json.loads(line)
    assert parsed["message"] == 'said "hi"\nthen left'
    assert parsed["level"] == "WARNING"
    assert parsed["logger"] == "rm6.test"
    assert parsed["time"]


def test_json_log_line_carries_the_traceback():
    try:
        raise ValueError("bad value")
    except ValueError:
        record = logging.LogRecord(
            "rm6.test", logging.ERROR, __file__, 1, "failed", None, sys.exc_info()
        )

    parsed = json.loads(_json_formatter().format(record))

    assert "ValueError: bad value" in parsed["exc_info"]
