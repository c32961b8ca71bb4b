"""Request dependencies, as Annotated aliases the routes declare."""

from __future__ import annotations

import math
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from lakehouse.contracts.registry import ContractRegistry
from lakehouse_api.auth import ApiKeys, Caller
from lakehouse_api.backends import Backends
from lakehouse_api.problems import ProblemError
from lakehouse_api.rate_limit import TokenBuckets
from lakehouse_api.settings import ApiSettings

# auto_error=False: a missing key must become our problem+json 401, not FastAPI's plain 403.
_bearer = HTTPBearer(auto_error=False, description="An API key as a bearer token.")
_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="An API key.")


def get_settings(request: Request) -> ApiSettings:
    return request.app.state.settings


def get_backends(request: Request) -> Backends:
    return request.app.state.backends


def get_contracts(request: Request) -> ContractRegistry:
    return request.app.state.contracts


def require_key(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    header_key: Annotated[str | None, Depends(_api_key_header)],
) -> Caller:
    presented = header_key or (bearer.credentials if bearer else None)
    if not presented:
        raise ProblemError(
            401,
            "this endpoint needs an API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'",
            kind="unauthenticated",
            headers={"WWW-Authenticate": 'Bearer realm="lakehouse"'},
        )
    keys: ApiKeys = request.app.state.api_keys
    caller = keys.verify(presented)
    if caller is None:
        raise ProblemError(403, "the API key is not valid", kind="forbidden")
    _within_rate_limit(request.app.state.rate_limit, caller)
    return caller


def _within_rate_limit(limit: TokenBuckets | None, caller: Caller) -> None:
    if limit is None:
        return
    if (wait := limit.take(caller.key_sha256)) > 0:
        raise ProblemError(
            429,
            f"this API key sent more than {limit.burst} requests at once or {limit.per_minute} a minute; "
            f"retry after {math.ceil(wait)} s",
            kind="rate-limited",
            headers={"Retry-After": str(math.ceil(wait))},
        )


SettingsDep = Annotated[ApiSettings, Depends(get_settings)]
BackendsDep = Annotated[Backends, Depends(get_backends)]
ContractsDep = Annotated[ContractRegistry, Depends(get_contracts)]
CurrentKey = Annotated[Caller, Depends(require_key)]
