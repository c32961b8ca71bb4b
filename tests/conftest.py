"""Fixtures that connect to the real servers of the local stack (`make up`).

They are lazy: unit tests never touch them, so `pytest tests/unit` needs no stack.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from kubernetes import client, config
from psycopg.conninfo import make_conninfo
from pyiceberg.catalog import Catalog

from lakehouse.catalog.connect import rest_catalog
from lakehouse.db.migrate import migrate
from lakehouse.settings import CatalogSettings, S3Settings
from tests.utils.operator_process import OperatorProcess
from tests.utils.stack import stack_env


@pytest.fixture(scope="session")
def kube_api() -> client.ApiClient:
    config.load_kube_config(stack_env("KUBECONFIG")["KUBECONFIG"])
    return client.ApiClient()


@pytest.fixture(scope="session")
def custom_objects(kube_api: client.ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(kube_api)


@pytest.fixture(scope="session")
def s3() -> Any:
    stack_env("S3_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
    return S3Settings().client()


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    stack_env("ICEBERG_CATALOG_URI", "ICEBERG_WAREHOUSE", "S3_ENDPOINT_URL")
    return rest_catalog(CatalogSettings(), S3Settings())


@pytest.fixture(scope="session")
def database_url() -> str:
    return stack_env("DATABASE_URL")["DATABASE_URL"]


@pytest.fixture
def db(database_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        yield conn


@pytest.fixture
def scratch_database_url() -> Iterator[str]:
    """A fresh, empty database on the stack's server, dropped afterwards."""
    url = stack_env("DATABASE_URL")["DATABASE_URL"]
    name = f"test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_conninfo(url, dbname=name)
    finally:
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture
def migrated_database_url(scratch_database_url: str) -> str:
    """A fresh platform database of the test's own, with every migration: an operator pointed at it shares
    its rows and its event outbox with no other process."""
    migrate(scratch_database_url)
    return scratch_database_url


def _scratch_namespace(kube_api: client.ApiClient) -> Iterator[str]:
    core = client.CoreV1Api(kube_api)
    name = f"it-{uuid.uuid4().hex[:8]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    core.delete_namespace(name)


@pytest.fixture(scope="module")
def run_namespace(kube_api: client.ApiClient) -> Iterator[str]:
    """A namespace of the module's own, so its operator sees only its runs."""
    yield from _scratch_namespace(kube_api)


@pytest.fixture
def own_namespace(kube_api: client.ApiClient) -> Iterator[str]:
    """A namespace of the test's own, for a test that lists every run of its namespace."""
    yield from _scratch_namespace(kube_api)


@pytest.fixture(scope="module")
def operator(
    request: pytest.FixtureRequest, run_namespace: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    """The module's own operator; a module may set OPERATOR_ENV to configure it."""
    stack_env("KUBECONFIG", "KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL", "ICEBERG_CATALOG_URI")
    log = Path(tmp_path_factory.mktemp("operator")) / "operator.log"
    process = OperatorProcess(run_namespace, log, getattr(request.module, "OPERATOR_ENV", None)).start()
    yield process
    process.stop()
    assert process.process is not None and process.process.returncode in (0, -15), log.read_text()[-4000:]
