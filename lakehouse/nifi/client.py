"""A small client for the NiFi REST API (/nifi-api): timeouts on every call, errors that say what failed.

Only what deploying and watching one flow needs. Authentication, when the NiFi is secured: a bearer token
from username and password (POST /access/token), renewed on a 401; credentials come from the caller's
settings (environment or a mounted Secret), never from arguments or logs.
"""

from __future__ import annotations

import json
from typing import Any

import requests


class NiFiUnavailableError(ConnectionError):
    """NiFi did not answer (down, restarting, unreachable, or too slow)."""


class NiFiApiError(RuntimeError):
    """NiFi answered with an error status."""

    def __init__(self, method: str, path: str, status: int, body: str) -> None:
        super().__init__(f"NiFi {method} {path} returned {status}: {body.strip()[:500]}")
        self.status = status


class NiFiClient:
    def __init__(
        self,
        api_url: str,
        *,
        username: str | None = None,
        password: str | None = None,
        verify: bool | str = True,
        connect_timeout: float = 5,
        read_timeout: float = 60,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self._username = username
        self._password = password
        self._timeout = (connect_timeout, read_timeout)
        self._session = requests.Session()
        self._session.verify = verify
        self._token: str | None = None

    def get(self, path: str, **params: Any) -> Any:
        return self._call("GET", path, params=params or None)

    def post(self, path: str, body: Any) -> Any:
        return self._call("POST", path, json=body)

    def put(self, path: str, body: Any) -> Any:
        return self._call("PUT", path, json=body)

    def delete(self, path: str, **params: Any) -> Any:
        return self._call("DELETE", path, params=params or None)

    def upload_flow(self, parent_group_id: str, name: str, snapshot: dict[str, Any], client_id: str) -> Any:
        """Imports a flow definition as a new process group (what "Upload flow definition" does)."""
        files = {"file": (f"{name}.json", json.dumps(snapshot).encode(), "application/json")}
        data = {"groupName": name, "positionX": "0", "positionY": "0", "clientId": client_id}
        return self._call("POST", f"/process-groups/{parent_group_id}/process-groups/upload", files=files, data=data)

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._send(method, path, **kwargs)
        if response.status_code == 401 and self._username:
            self._token = None  # expired: log in again, once
            response = self._send(method, path, **kwargs)
        if response.status_code >= 400:
            raise NiFiApiError(method, path, response.status_code, response.text)
        if not response.content:
            return None
        return response.json() if "json" in response.headers.get("Content-Type", "") else response.text

    def _send(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {}
        if self._username and self._token is None:
            self._token = self._login()
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        try:
            return self._session.request(
                method, f"{self.api_url}{path}", headers=headers, timeout=self._timeout, **kwargs
            )
        except requests.RequestException as error:
            raise NiFiUnavailableError(f"NiFi at {self.api_url} did not answer {method} {path}: {error}") from error

    def _login(self) -> str:
        try:
            response = self._session.post(
                f"{self.api_url}/access/token",
                data={"username": self._username, "password": self._password},
                timeout=self._timeout,
            )
        except requests.RequestException as error:
            raise NiFiUnavailableError(f"NiFi at {self.api_url} did not answer the login: {error}") from error
        if response.status_code >= 400:
            # The body names the cause (bad credentials, login not configured), never the password.
            raise NiFiApiError("POST", "/access/token", response.status_code, response.text)
        return response.text.strip()
