from __future__ import annotations

from typing import Literal

from lakehouse_api.schemas.base import CamelModel


class HealthPublic(CamelModel):
    status: Literal["ok"] = "ok"


class CheckPublic(CamelModel):
    ok: bool
    detail: str
    seconds: float


class ReadinessPublic(CamelModel):
    # Not `status`: when unready these members extend a problem+json body, whose `status` is the HTTP code.
    ready: bool
    checks: dict[str, CheckPublic]
