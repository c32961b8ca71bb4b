"""Kopf logs every TemporaryError at ERROR; a run that is merely waiting on NiFi or Spark is not an error."""

from __future__ import annotations

import logging

# Prefix of the TemporaryError messages raised for StillRunning (handlers.py).
WAITING = "waiting: "


class WaitingIsNotAnError(logging.Filter):
    """Shows "failed temporarily: waiting: ..." lines at INFO, keeping them in the log."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.ERROR and f"failed temporarily: {WAITING}" in record.getMessage():
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


def install() -> None:
    logging.getLogger("kopf.objects").addFilter(WaitingIsNotAnError())
