"""Lakekeeper's management API: the only calls we make that are not the Iceberg REST protocol.

Production runs Lakekeeper, which needs a one-time bootstrap and a warehouse before clients
can use the standard Iceberg REST endpoints. Everything else (namespaces, tables, commits)
goes through PyIceberg/Spark against the plain REST protocol, so the local stack's Apache
Iceberg REST server and Lakekeeper are interchangeable. Request bodies are built by pure
functions so tests can check them against Lakekeeper's published OpenAPI spec.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import requests

BOOTSTRAP_PATH = "/management/v1/bootstrap"
SERVER_INFO_PATH = "/management/v1/info"
WAREHOUSE_PATH = "/management/v1/warehouse"


@dataclass(frozen=True)
class S3Warehouse:
    """Where a warehouse keeps its files. Credentials are passed in, never read from argv."""

    name: str
    bucket: str
    region: str
    endpoint: str | None = None
    key_prefix: str | None = None
    path_style_access: bool = True
    access_key_id: str | None = None
    secret_access_key: str | None = None


class LakekeeperError(RuntimeError):
    pass


def bootstrap_request(*, is_operator: bool = True) -> dict[str, Any]:
    # The platform's service account bootstraps as an operator, not as a human admin.
    return {"accept-terms-of-use": True, "is-operator": is_operator}


def create_warehouse_request(warehouse: S3Warehouse) -> dict[str, Any]:
    profile: dict[str, Any] = {
        "type": "s3",
        "bucket": warehouse.bucket,
        "region": warehouse.region,
        "sts-enabled": False,
        "path-style-access": warehouse.path_style_access,
        # Anything that is not AWS itself (MinIO, SeaweedFS, Ceph) is "s3-compat".
        "flavor": "s3-compat" if warehouse.endpoint else "aws",
    }
    if warehouse.endpoint:
        profile["endpoint"] = warehouse.endpoint
    if warehouse.key_prefix:
        profile["key-prefix"] = warehouse.key_prefix
    body: dict[str, Any] = {"warehouse-name": warehouse.name, "storage-profile": profile}
    if warehouse.access_key_id and warehouse.secret_access_key:
        body["storage-credential"] = {
            "type": "s3",
            "credential-type": "access-key",
            "access-key-id": warehouse.access_key_id,
            "secret-access-key": warehouse.secret_access_key,
        }
    return body


class LakekeeperManagement:
    """Idempotent set-up of a Lakekeeper server: bootstrap once, create the warehouse once."""

    def __init__(self, base_url: str, token: str | None = None, timeout: float = 10.0) -> None:
        self._base_url = base_url.rstrip("/")
        self._session = requests.Session()
        if token:
            self._session.headers["Authorization"] = f"Bearer {token}"
        self._timeout = timeout

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> requests.Response:
        response = self._session.request(method, self._base_url + path, json=body, timeout=self._timeout)
        if response.status_code >= 400:
            # Never echo the request body: it may carry storage credentials.
            raise LakekeeperError(f"{method} {path} -> {response.status_code}: {response.text[:500]}")
        return response

    def is_bootstrapped(self) -> bool:
        return bool(self._call("GET", SERVER_INFO_PATH).json()["bootstrapped"])

    def ensure_bootstrapped(self) -> bool:
        """Bootstraps the server; returns False when it already was."""
        if self.is_bootstrapped():
            return False
        self._call("POST", BOOTSTRAP_PATH, bootstrap_request())
        return True

    def warehouse_id(self, name: str) -> str | None:
        warehouses = self._call("GET", WAREHOUSE_PATH).json()["warehouses"]
        return next((w["warehouse-id"] for w in warehouses if w["name"] == name), None)

    def ensure_warehouse(self, warehouse: S3Warehouse) -> str:
        """The warehouse's id, creating the warehouse first when it does not exist."""
        existing = self.warehouse_id(warehouse.name)
        if existing:
            return existing
        created = self._call("POST", WAREHOUSE_PATH, create_warehouse_request(warehouse)).json()
        return created["warehouse-id"]
