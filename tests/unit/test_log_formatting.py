"""Log lines: one record is one line, whatever its message, extras or traceback contain."""

from __future__ import annotations

import logging
import sys

import orjson

from farm_adapters.logs import JsonFormatter

FORGED = 'done\n{"ts":"2026-01-01T00:00:00.000+00:00","level":"info","msg":"forged"}'


def _record(**extra: object) -> logging.LogRecord:
    try:
        raise ValueError(FORGED)
    except ValueError:
        exc_info = sys.exc_info()
    record = logging.LogRecord("farm.http", logging.ERROR, __file__, 1, FORGED, (), exc_info)
    record.__dict__.update(extra)
    return record


def test_a_json_record_with_newlines_and_a_traceback_is_one_line() -> None:
    line = JsonFormatter().format(_record(path="/x\n/y"))
    assert "\n" not in line
    entry = orjson.loads(line)
    assert entry["msg"] == FORGED and entry["level"] == "error"
    assert entry["exc"].startswith("Traceback") and FORGED in entry["exc"]
    assert entry["path"] == "/x\n/y"


def test_extras_never_replace_the_fixed_fields() -> None:
    entry = orjson.loads(JsonFormatter().format(_record(level="info", ts="then", logger="x")))
    assert entry["level"] == "error" and entry["logger"] == "farm.http"
    assert entry["ts"] != "then"
    assert entry["extra_level"] == "info" and entry["extra_ts"] == "then"


def test_unserializable_extras_are_logged_as_text() -> None:
    entry = orjson.loads(JsonFormatter().format(_record(odd={1: object()})))
    assert isinstance(entry["odd"], str)
