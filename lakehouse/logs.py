"""Structured logs: one JSON object per line, with the run a line is about.

The operator sets the run's fields for the duration of a step (`run_fields`); every line logged in
that step, by our code, an engine or Kopf itself, then carries `run`, `uploadId` and `phase`. Lines
Kopf logs about an object outside a step carry at least the run's name.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from typing import Any

from pythonjsonlogger.json import JsonFormatter

_RUN: ContextVar[dict[str, str] | None] = ContextVar("lakehouse_run", default=None)


@contextlib.contextmanager
def run_fields(run: str, upload_id: str, phase: str | None) -> Iterator[None]:
    token = _RUN.set({"run": run, "uploadId": upload_id, "phase": phase or ""})
    try:
        yield
    finally:
        _RUN.reset(token)


class RunFields(logging.Filter):
    """Adds the current run's fields to a record (or the run's name from Kopf's object reference)."""

    def filter(self, record: logging.LogRecord) -> bool:
        fields: dict[str, Any] | None = _RUN.get()
        if fields is None and isinstance(ref := getattr(record, "k8s_ref", None), dict):
            fields = {"run": ref.get("name")}
        for key, value in (fields or {}).items():
            setattr(record, key, value)
        return True


def json_formatter() -> logging.Formatter:
    return JsonFormatter(
        "{asctime}{levelname}{name}{message}",
        style="{",
        rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        reserved_attrs=[*_RESERVED, "k8s_ref", "k8s_skip", "settings"],
    )


def log_json(loggers: Iterable[str] = ("",)) -> None:
    """Every handler of these loggers (the root by default) writes JSON with the run's fields, unless
    LAKEHOUSE_LOG_FORMAT=text asks for plain lines (handy at a terminal)."""
    log_format = os.environ.get("LAKEHOUSE_LOG_FORMAT", "json")
    if log_format not in ("json", "text"):
        raise ValueError(f"LAKEHOUSE_LOG_FORMAT must be json or text, not {log_format!r}")
    if log_format == "text":
        return
    for name in loggers:
        for handler in logging.getLogger(name).handlers:
            handler.setFormatter(json_formatter())
            handler.addFilter(RunFields())


# The attributes every LogRecord has; the JSON formatter leaves them out unless the format names them.
_RESERVED = [*logging.LogRecord("", 0, "", 0, "", None, None).__dict__, "message", "asctime", "taskName"]
