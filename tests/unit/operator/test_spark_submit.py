"""The local Spark engine answers at once and follows its spark-submit, here a stand-in script.

The real job runs in tests/integration/test_spark_job.py; these check what the engine makes of a
process: how often it starts one, what it answers meanwhile, and how the end becomes an outcome.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from lakehouse_operator.engines.base import RunContext, RunRejectedError, StillRunning, TransformOutcome
from lakehouse_operator.engines.spark import SparkSettings
from lakehouse_operator.engines.spark_submit import SparkJobError, SparkSubmitEngine

from lakehouse.contracts.registry import ContractRegistry
from tests.utils.engines import transform_until_done

RESULT = {"table": "bronze.orders", "snapshot_id": 42, "rows_written": 7, "already_committed": False}
# Records each start, waits for its release file (if told to), prints what it is told, exits as told.
FAKE_SPARK_SUBMIT = """#!/bin/sh
echo "$*" >> "$FAKE_SPARK_CALLS"
echo $$ > "$FAKE_SPARK_CALLS.pid"
while [ -n "$FAKE_SPARK_RELEASE" ] && [ ! -e "$FAKE_SPARK_RELEASE" ]; do sleep 0.05; done
printf '%s\\n' "$FAKE_SPARK_STDOUT"
printf '%s\\n' "$FAKE_SPARK_STDERR" >&2
exit "$FAKE_SPARK_EXIT"
"""


def run() -> RunContext:
    return RunContext(
        name="orders-20250701-abc123", namespace="lakehouse", upload_id="orders-20250701-abc123",
        dataset="orders", contract=ContractRegistry.default().get("orders"),
        source_uri="s3://uploads/orders/2025-07-01/orders-20250701-abc123/data.csv", source_format="csv",
        source_sha256=None, processing_date=dt.date(2025, 7, 1), ingest_timestamp=dt.datetime(2025, 7, 1, 9, 30),
        target_table="bronze.orders", owner={"uid": str(uuid.uuid4())},
    )  # fmt: skip


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    script = tmp_path / "spark-submit"
    script.write_text(FAKE_SPARK_SUBMIT)
    script.chmod(0o755)
    calls = tmp_path / "calls"
    calls.touch()
    env = {"FAKE_SPARK_CALLS": str(calls), "FAKE_SPARK_RELEASE": "", "FAKE_SPARK_STDOUT": json.dumps(RESULT),
           "FAKE_SPARK_STDERR": "", "FAKE_SPARK_EXIT": "0"}  # fmt: skip
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return {"script": script, "calls": calls, "work_dir": tmp_path / "work"}


def engine(fake: dict[str, Any], **settings: Any) -> SparkSubmitEngine:
    values = {"LAKEHOUSE_SPARK_SUBMIT": str(fake["script"]), "SPARK_JARS": "/opt/jars/iceberg.jar",
              "LAKEHOUSE_SPARK_WORK_DIR": str(fake["work_dir"]), **settings}  # fmt: skip
    return SparkSubmitEngine(SparkSettings(**values))


def until_done(spark: SparkSubmitEngine, context: RunContext) -> TransformOutcome:
    return transform_until_done(spark, context, "s3://raw/x.parquet", timeout=20, poll=0.05)


def test_answers_still_running_until_its_one_process_ends(
    fake: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = tmp_path / "release"
    monkeypatch.setenv("FAKE_SPARK_RELEASE", str(release))
    spark, context = engine(fake), run()

    answers = [spark.transform(context, "s3://raw/x.parquet") for _ in range(3)]
    restarted = engine(fake)  # an operator restart: the process is found again, not started twice
    answers.append(restarted.transform(context, "s3://raw/x.parquet"))

    assert all(isinstance(a, StillRunning) and "is running" in a.message for a in answers), answers
    assert all(2.0 <= a.delay <= 15 for a in answers if isinstance(a, StillRunning))
    release.touch()
    outcome = until_done(restarted, context)
    assert outcome == TransformOutcome("bronze.orders", 42, 7)
    calls = fake["calls"].read_text().splitlines()
    assert len(calls) == 1
    assert "--run-id orders-20250701-abc123" in calls[0] and "--raw-uri s3://raw/x.parquet" in calls[0]


def test_a_rejected_job_fails_the_run_with_the_jobs_reason_and_message(
    fake: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    error = {"error": "raw file lacks required column(s) customer_id", "reason": "MissingColumns"}
    monkeypatch.setenv("FAKE_SPARK_STDOUT", json.dumps(error))
    monkeypatch.setenv("FAKE_SPARK_EXIT", "2")

    with pytest.raises(RunRejectedError) as rejected:
        until_done(engine(fake), run())

    assert rejected.value.reason == "MissingColumns"
    assert rejected.value.message == error["error"]


def test_a_failed_job_is_retried_with_a_new_process(fake: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_SPARK_STDOUT", "")
    monkeypatch.setenv("FAKE_SPARK_STDERR", "java.net.ConnectException: Connection refused")
    monkeypatch.setenv("FAKE_SPARK_EXIT", "1")
    spark, context = engine(fake), run()

    with pytest.raises(SparkJobError, match=r"exited with status 1: java\.net\.ConnectException"):
        until_done(spark, context)
    monkeypatch.setenv("FAKE_SPARK_STDOUT", json.dumps(RESULT))
    monkeypatch.setenv("FAKE_SPARK_EXIT", "0")

    assert until_done(spark, context).snapshot_id == RESULT["snapshot_id"]  # the handler's retry: a second process
    assert len(fake["calls"].read_text().splitlines()) == 2


def test_a_job_over_its_time_is_killed_and_the_run_fails(
    fake: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_SPARK_RELEASE", str(tmp_path / "never"))
    spark, context = engine(fake, LAKEHOUSE_SPARK_TIMEOUT_SECONDS=0.5), run()
    assert isinstance(spark.transform(context, "s3://raw/x.parquet"), StillRunning)
    time.sleep(0.7)

    with pytest.raises(RunRejectedError) as rejected:
        spark.transform(context, "s3://raw/x.parquet")

    assert rejected.value.reason == "SparkTimedOut" and "did not finish" in rejected.value.message
    assert not (fake["work_dir"] / context.owner["uid"]).exists()
    pid = int(Path(f"{fake['calls']}.pid").read_text())
    deadline = time.monotonic() + 5
    while alive(pid):
        assert time.monotonic() < deadline, "spark-submit outlived its timeout"
        time.sleep(0.05)


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_without_jars_no_process_starts(fake: dict[str, Any]) -> None:
    with pytest.raises(SparkJobError, match="SPARK_JARS is not set"):
        engine(fake, SPARK_JARS="").transform(run(), "s3://raw/x.parquet")
    assert fake["calls"].read_text() == ""
