"""The Spark engine without a cluster: spark-submit --master local[*] as a child process of the operator.

The devstack has no Spark Operator. Same job, same arguments, same environment as the SparkApplication.
Each call looks at the run's process once: none yet -> start it; running -> StillRunning; ended -> the
outcome from the job's last stdout line and its exit status.

Processes are kept per run uid by engines.run_process, in a directory that outlives the operator. After
an operator restart (or a replayed event) the run's process is found again: a running one is followed
on, the output of one that ended meanwhile is read, and only a run with no process gets a new one.
A new one commits nothing if an earlier one did, because the job looks for the run id in the
snapshot summaries first; and none is started when the bronze table already holds the run's snapshot
(an operator killed after it read a job's output, before the run's status moved), so such a restart
costs a catalog read, not a second job.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import NoSuchTableError

from lakehouse.jobs import EXIT_REJECTED, last_json_line
from lakehouse.k8s.ingestionrun.reasons import FailureReason
from lakehouse_operator.engines.base import RunContext, RunRejectedError, StillRunning, TransformOutcome
from lakehouse_operator.engines.run_process import Ended, RunProcesses
from lakehouse_operator.engines.spark import JOB_FILE, SparkSettings, SparkTransformEngine, committed_outcome
from lakehouse_operator.engines.spark_application import application_name
from lakehouse_operator.faults import crash_point

log = logging.getLogger(__name__)


class SparkJobError(RuntimeError):
    """The local job failed in a way a retry may fix (the operator retries with backoff)."""


class SparkSubmitEngine(SparkTransformEngine):
    def __init__(
        self,
        settings: SparkSettings,
        processes: RunProcesses | None = None,
        catalog: Callable[[], Catalog] | None = None,  # None: always ask a job
    ) -> None:
        super().__init__(settings)
        self._processes = processes or RunProcesses(settings.work_dir, keep_seconds=2 * settings.timeout_seconds)
        self._catalog = catalog

    def transform(self, run: RunContext, raw_uri: str) -> TransformOutcome | StillRunning:
        uid = run.owner["uid"]
        state = self._processes.state(uid)
        if state is None and (earlier := self._committed_earlier(run)) is not None:
            log.info("run %s already committed as snapshot %s; no new spark-submit", run.name, earlier.snapshot_id)
            return earlier
        if state is None:
            command = self.local_command(run, raw_uri)
            log.info("spark-submit for run %s: %s", run.name, " ".join(command))
            state = self._processes.start(uid, command, self._environment())
            crash_point("spark-submit.started", run.name)
        if isinstance(state, Ended):
            self._processes.forget(uid)  # used once: a retry after a failure starts a new process
            return _outcome(state)
        elapsed = time.time() - state.started_at
        timeout = self._settings.timeout_seconds
        if elapsed > timeout:
            self._processes.stop(uid)
            self._processes.forget(uid)
            raise RunRejectedError(FailureReason.SPARK_TIMED_OUT, f"the Spark job did not finish in {timeout:.0f}s")
        # A small job takes about a minute here: look again soon at first, then every poll_seconds.
        delay = min(self._settings.poll_seconds, max(2.0, elapsed / 4))
        return StillRunning(f"spark-submit of run {run.name} is running ({elapsed:.0f}s)", delay=delay)

    def _committed_earlier(self, run: RunContext) -> TransformOutcome | None:
        if self._catalog is None:
            return None
        try:
            outcome = committed_outcome(self._catalog(), run)
        except NoSuchTableError:  # the run's job creates the table
            return None
        return outcome if outcome.snapshot_id is not None else None

    def local_command(self, run: RunContext, raw_uri: str) -> list[str]:
        s = self._settings
        jars = [jar for jar in s.jars.split(",") if jar]
        if not jars:
            raise SparkJobError(
                "SPARK_JARS is not set: run `devstack/spark.sh install` and export `devstack/spark.sh env`"
            )
        return [
            s.spark_submit or str(_spark_home() / "bin" / "spark-submit"),
            "--master", s.master,
            "--name", application_name(run.name),
            "--driver-memory", s.driver_memory,
            "--conf", "spark.ui.enabled=false",
            # One JVM in local mode: the class path is enough, --jars would copy 370 MB per run.
            "--conf", f"spark.driver.extraClassPath={':'.join(jars)}",
            str(s.job_file or JOB_FILE),
            *self.arguments(run, raw_uri),
        ]  # fmt: skip

    def _environment(self) -> dict[str, str]:
        return {
            **os.environ,
            "SPARK_HOME": os.environ.get("SPARK_HOME") or str(_spark_home()),
            # Driver and Python workers use this interpreter, so they import this very project.
            "PYSPARK_PYTHON": sys.executable,
            "PYSPARK_DRIVER_PYTHON": sys.executable,
        }


def _outcome(ended: Ended) -> TransformOutcome:
    result = last_json_line(ended.stdout)
    if ended.exit_status == 0 and "table" in result:
        return TransformOutcome(result["table"], result["snapshot_id"], result["rows_written"])
    message = result.get("error") or _tail(ended.stderr)
    if ended.exit_status == EXIT_REJECTED:
        raise RunRejectedError(result.get("reason") or FailureReason.SPARK_JOB_REJECTED, message)
    if ended.exit_status is None:
        raise SparkJobError(f"the Spark job was stopped before it could report: {message}")
    raise SparkJobError(f"the Spark job exited with status {ended.exit_status}: {message}")


def _spark_home() -> Path:
    """pyspark's package folder, a complete SPARK_HOME (found without importing pyspark)."""
    spec = importlib.util.find_spec("pyspark")
    if spec is None or spec.origin is None:
        raise SparkJobError("pyspark is not installed; local mode runs its spark-submit")
    return Path(spec.origin).resolve().parent


def _tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])
