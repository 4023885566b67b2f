from __future__ import annotations

import json
import logging

from eventplane.logs import JsonFormatter, TextFormatter


def _record(**extra: object) -> logging.LogRecord:
    record = logging.LogRecord("eventplane.x", logging.INFO, __file__, 1, "stored %d", (5,), None)
    record.__dict__.update(extra)
    return record


def test_json_lines_carry_the_extra_fields() -> None:
    doc = json.loads(JsonFormatter().format(_record(request_ids=["r1"], job_id="j")))
    assert doc["msg"] == "stored 5" and doc["level"] == "info" and doc["logger"] == "eventplane.x"
    assert doc["request_ids"] == ["r1"] and doc["job_id"] == "j"
    assert doc["ts"].endswith("Z")


def test_text_lines_show_extra_fields_after_the_message() -> None:
    line = TextFormatter().format(_record(job_id="j"))
    assert "stored 5" in line and '{"job_id":"j"}' in line
