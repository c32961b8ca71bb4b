"""Ingest with Apache NiFi: the operator hands each run to the lakehouse-ingest flow and watches S3.

Trigger: deploy the flow if missing or outdated (lakehouse.nifi.deploy, one step per call, StillRunning
while NiFi works), then POST the run's assignment to the flow's ListenHTTP: ids, format and presigned
URLs for the upload (GET) and for the raw, quarantine and result objects (PUT). NiFi never holds S3
credentials, and the flow drops assignments whose URLs are not on the configured S3 endpoint.

Wait: the run is done when its result (`<raw bucket>/_nifi/<dataset>/<date>/<upload>.json`) and every
object it names exist. The result carries NiFi's counts and data-quality checks, or the reason the
file could not be ingested. Each handler call looks once and returns StillRunning, so no handler thread
waits on NiFi; the hand-off is repeated after an operator restart, which is harmless because the flow
writes the same keys with the same bytes.

NiFi's Kafka bundles are not installable here, so the hand-off is HTTP rather than `file-uploaded`; the
operator still publishes `file-uploaded` and `raw-data-ready` for everyone else (see nifi/README.md).
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
import json
import logging
import re
import sys
import threading
import time
from pathlib import Path
from typing import Any

import requests
from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from lakehouse.contracts.registry import contracts_dir
from lakehouse.k8s.ingestionrun.reasons import FailureReason
from lakehouse.nifi.client import NiFiApiError, NiFiClient, NiFiUnavailableError
from lakehouse.nifi.deploy import FlowDefinition, FlowDeployer, FlowPending
from lakehouse.nifi.step_result import StepResult
from lakehouse.settings import S3Settings
from lakehouse.storage.layout import IngestPaths, nifi_result_location
from lakehouse.storage.s3 import ObjectNotFoundError, S3Location, delete_object, head_object, read_object
from lakehouse_operator.engines.base import IngestEngine, IngestOutcome, RunContext, RunRejectedError, StillRunning
from lakehouse_operator.faults import crash_point

log = logging.getLogger(__name__)


class NiFiSettings(BaseSettings):
    """The NiFi engine's configuration, from the operator's environment (credentials from a Secret)."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    api_url: str | None = Field(default=None, validation_alias=AliasChoices("LAKEHOUSE_NIFI_API_URL", "NIFI_API_URL"))
    # Where the operator POSTs assignments, and the port the flow's ListenHTTP opens (a flow parameter).
    listen_url: str | None = Field(
        default=None, validation_alias=AliasChoices("LAKEHOUSE_NIFI_LISTEN_URL", "NIFI_LISTEN_URL")
    )
    listen_port: int = Field(
        default=9092, validation_alias=AliasChoices("LAKEHOUSE_NIFI_LISTEN_PORT", "NIFI_LISTEN_PORT")
    )
    # Sent with each run; the flow keeps only its SHA-256 (a parameter) and drops runs without it.
    listen_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("LAKEHOUSE_NIFI_LISTEN_TOKEN", "NIFI_LISTEN_TOKEN")
    )
    # The Python that runs lakehouse.nifi.step inside NiFi, and the contracts it reads there.
    python_command: str = Field(default=sys.executable, alias="LAKEHOUSE_NIFI_PYTHON")
    contracts_dir: str | None = Field(default=None, alias="LAKEHOUSE_NIFI_CONTRACTS_DIR")
    # The S3 endpoint as NiFi reaches it (presigned URLs are signed for this host); default: the operator's.
    s3_endpoint: str | None = Field(default=None, alias="LAKEHOUSE_NIFI_S3_ENDPOINT")
    timeout_seconds: float = Field(default=900, gt=0, alias="LAKEHOUSE_NIFI_TIMEOUT_SECONDS")
    poll_seconds: float = Field(default=2, gt=0, alias="LAKEHOUSE_NIFI_POLL_SECONDS")
    username: str | None = Field(default=None, alias="LAKEHOUSE_NIFI_USERNAME")
    password: SecretStr | None = Field(default=None, alias="LAKEHOUSE_NIFI_PASSWORD")
    ca_bundle: str | None = Field(default=None, alias="LAKEHOUSE_NIFI_CA_BUNDLE")
    flow_file: Path | None = Field(default=None, alias="LAKEHOUSE_NIFI_FLOW_FILE")  # None: the packaged flow

    @property
    def enabled(self) -> bool:
        return bool(self.api_url and self.listen_url and self.listen_token)


def result_location(raw_bucket: str, run: RunContext) -> S3Location:
    return nifi_result_location(raw_bucket, run.dataset, run.processing_date, run.upload_id)


class NiFiIngestEngine(IngestEngine):
    def __init__(
        self, settings: NiFiSettings, s3_settings: S3Settings, s3: Any, raw_bucket: str, quarantine_bucket: str
    ) -> None:
        if not settings.enabled:
            raise ValueError(
                "the NiFi engine needs LAKEHOUSE_NIFI_API_URL, LAKEHOUSE_NIFI_LISTEN_URL"
                " and LAKEHOUSE_NIFI_LISTEN_TOKEN"
            )
        self._settings = settings
        self._token = settings.listen_token.get_secret_value() if settings.listen_token else ""
        self._s3 = s3
        self._raw_bucket = raw_bucket
        self._quarantine_bucket = quarantine_bucket
        endpoint = settings.s3_endpoint or s3_settings.endpoint_url or "https://s3.amazonaws.com"
        self._s3_endpoint = endpoint.rstrip("/")
        # Presigned URLs with SigV4 (query-string auth), for the host NiFi reaches.
        # Path-style URLs (endpoint/bucket/key) signed with SigV4 for the host NiFi reaches: the flow
        # accepts only URLs under the raw and quarantine buckets of this endpoint.
        self._presigner = s3_settings.model_copy(update={"endpoint_url": self._s3_endpoint, "path_style": True}).client(
            signature_version="s3v4"
        )
        self.client = NiFiClient(
            settings.api_url or "",
            username=settings.username,
            password=settings.password.get_secret_value() if settings.password else None,
            verify=settings.ca_bundle or True,
        )
        self.deployer = FlowDeployer(
            self.client,
            FlowDefinition.load(settings.flow_file),
            {
                "listen.port": str(settings.listen_port),
                "python.command": settings.python_command,
                "contracts.dir": settings.contracts_dir or str(contracts_dir()),  # the operator's own by default
                "s3.endpoint": self._s3_endpoint,
                "bucket.raw": raw_bucket,
                "bucket.quarantine": quarantine_bucket,
                "listen.token.sha256": hashlib.sha256(self._token.encode()).hexdigest(),
            },
        )
        # Runs handed to NiFi by this process (by uid: a run re-created under its old name is a new run),
        # with when; a restart hands them over again.
        self._handed_over: dict[str, float] = {}
        self._handed_over_at: dict[str, dt.datetime] = {}  # the same, by the wall clock (for job metrics)
        # When the hand-off was first tried, for runs NiFi has not accepted yet (NiFi down).
        self._first_tries: dict[str, float] = {}
        self._lock = threading.Lock()

    def ingest(self, run: RunContext) -> IngestOutcome | StillRunning:
        result = self._read_result(run)
        if result is not None:
            with self._lock:
                started_at = self._handed_over_at.get(_key(run))
            try:
                outcome = self._outcome(run, result)
            except RunRejectedError:
                self._forget(run)
                raise
            if outcome is not None:
                self._forget(run)
                return dataclasses.replace(outcome, started_at=started_at)
        with self._lock:
            handed_at = self._handed_over.get(_key(run))
        if handed_at is None:
            return self._hand_over(run)
        waited = time.monotonic() - handed_at
        if waited > self._settings.timeout_seconds:
            self._forget(run)
            raise RunRejectedError(
                FailureReason.NIFI_TIMED_OUT,
                f"NiFi did not finish the run in {self._settings.timeout_seconds:.0f}s; see the bulletins of the "
                f"{self.deployer.flow_name} process group in NiFi, then create a new run",
            )
        # Small files take NiFi about a second: look again soon at first, then every poll_seconds.
        delay = min(self._settings.poll_seconds, max(0.25, waited / 2))
        return StillRunning(f"NiFi is ingesting (handed over {waited:.0f}s ago)", delay=delay)

    def assignment(self, run: RunContext) -> dict[str, Any]:
        result = result_location(self._raw_bucket, run)
        paths = self._paths(run)
        expiry = int(self._settings.timeout_seconds) + 600
        source = S3Location.parse(run.source_uri)
        return {
            "token": self._token,
            "run": run.name,
            "runUid": run.owner["uid"],
            "uploadId": run.upload_id,
            "dataset": run.dataset,
            "format": run.source_format,
            "sha256": run.source_sha256 or "",
            "sourceUrl": self._presign("get_object", source, expiry),
            "rawUrl": self._presign("put_object", paths.raw, expiry),
            "quarantineUrl": self._presign("put_object", paths.quarantine, expiry),
            "manifestUrl": self._presign("put_object", result, expiry),  # the flow names the step result so
            # The run's pinned contract (a Dataset resource's too, which NiFi has no copy of): NiFi checks the
            # file against it, not against its contracts directory. Base64, one safe token on NiFi's command line.
            # Fields left at their defaults are left out: a NiFi image older than the operator then still reads
            # a contract whose options it predates, as long as the contract does not use them.
            "contract": base64.b64encode(run.contract.model_dump_json(exclude_defaults=True).encode()).decode(),
        }

    def _hand_over(self, run: RunContext) -> StillRunning:
        first_try = self._handed_over_or_now(run)
        try:
            flow = self.deployer.step()
            if isinstance(flow, FlowPending):  # deploying: each call takes one step, none waits
                return StillRunning(flow.message, delay=flow.delay)
            # Outputs of an earlier run of the same name (deleted and created again) must not be taken
            # for this run's: they go before NiFi writes new ones.
            self._remove_stale_outputs(run)
            response = requests.post(
                self._settings.listen_url or "",
                data=json.dumps(self.assignment(run)),
                headers={"Content-Type": "application/json"},
                timeout=(5, 30),
            )
            if response.status_code != 200:
                raise NiFiApiError("POST", "(ListenHTTP)", response.status_code, response.text)
        except (NiFiUnavailableError, NiFiApiError, requests.RequestException) as error:
            self.deployer.forget()
            if time.monotonic() - first_try > self._settings.timeout_seconds:
                self._forget(run)
                raise RunRejectedError(
                    FailureReason.NIFI_UNAVAILABLE,
                    f"could not hand the run to NiFi for {self._settings.timeout_seconds:.0f}s: {error}",
                ) from error
            # The URLs are in the body, never in the message.
            return StillRunning(
                f"waiting for NiFi: {error}",
                delay=max(self._settings.poll_seconds, 5),
                status=f"waiting for NiFi, which is not reachable or refused the run: {_stable(error)}",
            )
        with self._lock:
            self._handed_over[_key(run)] = time.monotonic()
            self._handed_over_at[_key(run)] = dt.datetime.now(dt.UTC)
            self._first_tries.pop(_key(run), None)
        log.info("handed run %s (upload %s) to NiFi", run.name, run.upload_id)
        crash_point("nifi.handed-over", run.name)
        return StillRunning(
            "handed over to NiFi",
            delay=min(self._settings.poll_seconds, 0.5),
            status="handed over to NiFi; waiting for its results",
        )

    def _handed_over_or_now(self, run: RunContext) -> float:
        with self._lock:
            return self._first_tries.setdefault(_key(run), time.monotonic())

    def _forget(self, run: RunContext) -> None:
        with self._lock:
            self._handed_over.pop(_key(run), None)
            self._handed_over_at.pop(_key(run), None)
            self._first_tries.pop(_key(run), None)

    def _read_result(self, run: RunContext) -> StepResult | None:
        """This run's result; None while there is none, or only an earlier run's of the same name."""
        try:
            data = read_object(self._s3, result_location(self._raw_bucket, run))
        except ObjectNotFoundError:
            return None
        result = StepResult.from_json(data)
        return result if (result.upload_id, result.run_uid) == (run.upload_id, run.owner["uid"]) else None

    def _remove_stale_outputs(self, run: RunContext) -> None:
        paths = self._paths(run)
        for location in (result_location(self._raw_bucket, run), paths.raw, paths.quarantine):
            delete_object(self._s3, location)

    def _outcome(self, run: RunContext, result: StepResult) -> IngestOutcome | None:
        """The outcome, or None while an object the result names is not written yet."""
        if result.error is not None:
            raise RunRejectedError(result.error.reason, f"NiFi: {result.error.message}")
        if result.contract_version != run.contract.version:
            raise RunRejectedError(
                FailureReason.CONTRACT_MISMATCH,
                f"NiFi validated with version {result.contract_version} of the {run.dataset} contract, the operator "
                f"has version {run.contract.version}; deploy this operator's NiFi flow (it sends NiFi the run's "
                "contract), then create a new run",
            )
        paths = self._paths(run)
        raw = paths.raw
        quarantine = paths.quarantine if result.rejected_rows else None
        if head_object(self._s3, raw) is None or (quarantine and head_object(self._s3, quarantine) is None):
            return None
        return IngestOutcome(
            input_rows=result.input_rows,
            valid_rows=result.valid_rows,
            rejected_rows=result.rejected_rows,
            raw_uri=raw.uri,
            quarantine_uri=quarantine.uri if quarantine else None,
            bytes_in=result.bytes_in,
            checks=[check.as_result() for check in result.checks],
        )

    def _paths(self, run: RunContext) -> IngestPaths:
        """The built-in engine's keys: which engine ingested a run does not change where its files are."""
        return IngestPaths.for_run(
            run.dataset, run.processing_date, run.upload_id, self._raw_bucket, self._quarantine_bucket
        )

    def _presign(self, operation: str, location: S3Location, expiry: int) -> str:
        return self._presigner.generate_presigned_url(
            operation, Params={"Bucket": location.bucket, "Key": location.key}, ExpiresIn=expiry
        )


def _stable(error: Exception) -> str:
    """The error without the object addresses urllib3 puts in it, so the status line stays the same."""
    return re.sub(r" at 0x[0-9a-f]+", "", str(error))[:300]


def _key(run: RunContext) -> str:
    return run.owner["uid"]
