"""The bad-input corpus (tests/data/bad) end to end, as a new user meets it: each file is uploaded through
the real upload API (or put in S3 with the run the API would create), run by this module's operator, and
held to its expected outcome: the API's refusal with nothing kept, or the run's phase, Failed reason at
the first attempt, counts, quarantined rows with their reasons and bronze rows. Every file is sent before
any is checked, so one operator works on all of them together; it must neither crash nor leave a run
unfinished."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from kubernetes import client

from lakehouse.storage.s3 import S3Location, read_parquet
from tests.data.bad.generate import Case, manifest
from tests.utils.api_checks import leftovers, post_upload, problem
from tests.utils.api_process import ApiProcess, running_api
from tests.utils.operator_process import OperatorProcess
from tests.utils.runs import TERMINAL, create_run, run_body, upload, wait_for_phase

pytestmark = pytest.mark.integration
CORPUS = {case.name: case for case in manifest()}
RUN_TIMEOUT = 180


@pytest.fixture(scope="module")
def api(run_namespace: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiProcess]:
    """The API creating runs in this module's namespace, where only this worktree's operator works."""
    with running_api(run_namespace, tmp_path_factory.mktemp("api") / "api.log") as process:
        yield process


@pytest.fixture(scope="module")
def http(api: ApiProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api.url, headers=api.headers, timeout=120) as session:
        yield session


@pytest.fixture(scope="module")
def sent(
    operator: OperatorProcess,
    http: httpx.Client,
    s3: Any,
    custom_objects: client.CustomObjectsApi,
    run_namespace: str,
) -> dict[str, list[httpx.Response | str]]:
    """Per case, the API's answer to each upload, or the name of the run created beside the API."""
    return {
        case.name: [send(case, http, s3, custom_objects, run_namespace) for _ in range(case.uploads)]
        for case in CORPUS.values()
    }


def send(
    case: Case, http: httpx.Client, s3: Any, custom_objects: client.CustomObjectsApi, namespace: str
) -> httpx.Response | str:
    data = case.data()
    if case.path == "api":
        return post_upload(http, data, filename=case.filename, dataset=case.dataset)
    up = upload(s3, data, case.dataset, case.format, filename=case.filename)
    run = run_body(up, case.dataset)
    if case.wrong_sha256:
        run["spec"]["source"]["sha256"] = hashlib.sha256(b"another file").hexdigest()
    create_run(custom_objects, namespace, run)
    return up.upload_id


@pytest.mark.parametrize("name", CORPUS)
def test_each_bad_input_has_its_expected_outcome(
    name: str,
    sent: dict[str, list[httpx.Response | str]],
    operator: OperatorProcess,
    http: httpx.Client,
    s3: Any,
    custom_objects: client.CustomObjectsApi,
    run_namespace: str,
) -> None:
    case = CORPUS[name]
    runs = []
    for answer in sent[name]:
        if refused := case.expect.refused:
            assert isinstance(answer, httpx.Response)
            body = problem(answer, refused.status)
            assert body["type"].endswith(f"/{refused.type}") and refused.detail in body["detail"], body
            assert leftovers(s3, case.dataset, body["uploadId"]) == []
            continue
        run_name = answer
        if isinstance(answer, httpx.Response):
            assert answer.status_code == 202, answer.text
            assert answer.json()["format"] == case.format
            run_name = answer.json()["runName"]
        runs.append(wait_for_phase(custom_objects, run_namespace, run_name, TERMINAL, timeout=RUN_TIMEOUT))

    for run in runs:
        if case.expect.failed:
            check_failed(case, run["status"])
        else:
            check_succeeded(case, run, http, s3)
    assert len({run["metadata"]["name"] for run in runs}) == len(runs)  # one run per upload
    assert operator.alive


def check_failed(case: Case, status: dict[str, Any]) -> None:
    failed = case.expect.failed
    assert failed is not None
    condition = next((c for c in status["conditions"] if c["type"] == "Failed"), None)
    assert status["phase"] == "Failed" and condition is not None, status
    assert condition["reason"] == failed.reason and failed.message in condition["message"], condition
    assert status["attempts"] == 1  # at once: retrying cannot change the file


def check_succeeded(case: Case, run: dict[str, Any], http: httpx.Client, s3: Any) -> None:
    expected, status = case.expect.succeeded, run["status"]
    assert expected is not None
    assert status["phase"] == "Succeeded", status
    written = expected.valid
    assert status["counts"] == {
        "input": expected.input,
        "valid": expected.valid,
        "rejected": expected.rejected,
        "written": written,
    }
    if expected.rejected:
        quarantined = read_parquet(s3, S3Location.parse(status["quarantinePath"])).to_pylist()
        reasons = {row["_source_row"]: row["_reject_reason"] for row in quarantined}
        assert reasons.keys() == expected.quarantine.keys()
        assert all(fragment in reasons[row] for row, fragment in expected.quarantine.items()), reasons
    else:
        assert status.get("quarantinePath") is None
    if expected.bronze:
        namespace, table = status["table"].split(".")
        rows = http.get(
            f"/api/v1/tables/{namespace}/{table}/rows", params={"uploadId": run["spec"]["uploadId"], "limit": 1000}
        )
        values = [str(row[expected.bronze.column]) for row in rows.raise_for_status().json()["data"]]
        assert sorted(values) == expected.bronze.values
