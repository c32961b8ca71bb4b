"""Accepting one upload: form fields, then the file streamed to S3, then its IngestionRun.

Nothing is left half-done: a file that is refused, cut short or whose run cannot be created is
removed from S3 again, and a run is only created for a file that is complete and measured.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from lakehouse.contracts.model import DatasetContract
from lakehouse.contracts.registry import ContractRegistry, UnknownDatasetError
from lakehouse.storage.layout import upload_location
from lakehouse.storage.s3 import S3Location
from lakehouse_api import metrics
from lakehouse_api.access import require_dataset
from lakehouse_api.auth import Caller
from lakehouse_api.backends import Backends
from lakehouse_api.problems import ProblemError
from lakehouse_api.runs import RunExistsError, create_run, get_run
from lakehouse_api.schemas.uploads import UploadAccepted, UploadCreate
from lakehouse_api.settings import ApiSettings
from lakehouse_api.uploads import sniff
from lakehouse_api.uploads.filenames import safe_filename
from lakehouse_api.uploads.multipart import MalformedBodyError, PartEnd, PartStart, multipart_events
from lakehouse_api.uploads.s3_writer import S3StreamWriter
from lakehouse_api.uploads.stored_upload import (
    StoredUpload,
    idempotency_key_hash,
    idempotent_upload_id,
    new_upload_id,
    run_for,
)

FILE_FIELD = "file"
FORM_FIELDS = frozenset(UploadCreate.model_fields)
MAX_FIELD_BYTES = 256
# Room for part headers and boundaries around the file, when judging a declared Content-Length.
FORM_OVERHEAD_BYTES = 64 * 1024
CONTENT_TYPES = {"csv": "text/csv", "json": "application/x-ndjson", "parquet": "application/vnd.apache.parquet"}
log = logging.getLogger("lakehouse_api.uploads")

Events = AsyncIterator[PartStart | bytes | PartEnd]


@dataclass(frozen=True)
class UploadContext:
    settings: ApiSettings
    backends: Backends
    contracts: ContractRegistry
    caller: Caller
    idempotency_key: str | None
    status_url: Callable[[str], str]


def check_declared_length(content_length: str | None, settings: ApiSettings) -> None:
    """Refuse a body that announces itself too large before reading any of it."""
    declared = int(content_length) if content_length and content_length.isdigit() else 0
    if declared > settings.max_upload_bytes + FORM_OVERHEAD_BYTES:
        raise _too_large(settings)


async def accept_upload(ctx: UploadContext, chunks: AsyncIterator[bytes], boundary: bytes) -> UploadAccepted:
    started = time.monotonic()
    key_hash = idempotency_key_hash(ctx.caller.key_sha256, ctx.idempotency_key) if ctx.idempotency_key else None
    upload_id = idempotent_upload_id(key_hash) if key_hash else new_upload_id()
    events = multipart_events(chunks, boundary)
    try:
        form, file_part = await _read_form(events, ctx.contracts)
        require_dataset(ctx.caller, form.dataset, "upload to")  # before a byte of the file is stored
        earlier = await run_in_threadpool(get_run, ctx.backends, upload_id) if key_hash else None
        if earlier is not None:
            accepted = _replay(ctx, earlier, form.dataset)
        else:
            stored = await _store_file(ctx, events, form, file_part, upload_id, key_hash)
            accepted = await _create_run(ctx, stored)
            metrics.UPLOAD_BYTES.labels(stored.dataset).inc(stored.size)
            log.info(
                "upload %s stored: dataset=%s format=%s bytes=%d sha256=%s in %.1fs",
                upload_id, stored.dataset, stored.format, stored.size, stored.sha256, time.monotonic() - started,
            )  # fmt: skip
    except ClientDisconnect:
        metrics.UPLOADS.labels("disconnected").inc()
        raise ProblemError(400, "the client disconnected before the upload was complete") from None
    except ProblemError as problem:
        metrics.UPLOADS.labels(f"refused_{problem.status}").inc()
        raise
    metrics.UPLOADS.labels("replayed" if accepted.replayed else "accepted").inc()
    return accepted


async def _read_form(events: Events, contracts: ContractRegistry) -> tuple[UploadCreate, PartStart]:
    """The fields before the file part; the dataset must be known before a byte of the file is stored."""
    fields: dict[str, str] = {}
    current: PartStart | None = None
    value = bytearray()
    try:
        async for event in events:
            if isinstance(event, PartStart):
                if event.name == FILE_FIELD:
                    # The contract lookup may list Datasets from the API server: not on the event loop.
                    return await run_in_threadpool(_validated_form, fields, contracts), event
                if event.name not in FORM_FIELDS:
                    raise ProblemError(
                        422,
                        f"unknown form field {event.name!r}; fields: {', '.join(sorted(FORM_FIELDS))}, file",
                        kind="invalid-request",
                    )
                current, value = event, bytearray()
            elif isinstance(event, bytes):
                value += event
                if len(value) > MAX_FIELD_BYTES:
                    name = current.name if current else ""
                    raise ProblemError(422, f"form field {name!r} is too long", kind="invalid-request")
            elif current is not None:
                fields[current.name] = value.decode("utf-8", "replace").strip()
    except MalformedBodyError as error:
        raise ProblemError(400, str(error), kind="malformed-body") from None
    raise ProblemError(422, "the form has no 'file' part", kind="missing-file")


def _validated_form(fields: dict[str, str], contracts: ContractRegistry) -> UploadCreate:
    try:
        form = UploadCreate.model_validate({k: v for k, v in fields.items() if v})
    except ValidationError as error:
        errors = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in error.errors()]
        detail = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors)
        if "dataset" not in fields:
            detail += " (form fields must come before the file part)"
        raise ProblemError(422, detail, kind="invalid-request", errors=errors) from None
    try:
        contracts.get(form.dataset)  # a Dataset applied a moment ago is listed again (ClusterContracts)
    except UnknownDatasetError as error:
        raise ProblemError(422, str(error), kind="unknown-dataset", datasets=error.known) from None
    return form


async def _store_file(
    ctx: UploadContext, events: Events, form: UploadCreate, part: PartStart, upload_id: str, key_hash: str | None
) -> StoredUpload:
    filename = safe_filename(part.filename)
    today = dt.datetime.now(dt.UTC).date()
    location = upload_location(ctx.settings.uploads_bucket, form.dataset, upload_id, filename, today)
    writer = S3StreamWriter(
        ctx.backends.s3,
        location,
        ctx.settings.upload_part_bytes,
        max_in_flight=ctx.settings.upload_parts_in_flight,
    )
    try:
        contract = await run_in_threadpool(ctx.contracts.get, form.dataset)
        max_bytes = _max_file_bytes(ctx.settings, contract)
        source_format = await _stream_file(events, writer, max_bytes, filename)
        await _expect_end(events)
        await writer.complete()
    except BaseException as error:
        await writer.abort()
        problem = _file_problem(error)
        if problem is None:
            raise
        # The id lets an operator check that nothing of this upload was left behind.
        problem.extensions.setdefault("uploadId", upload_id)
        raise problem from (None if problem is error else error)
    engines = {k: v for k, v in {"ingest": form.ingest_engine, "transform": form.transform_engine}.items() if v}
    return StoredUpload(
        upload_id, form.dataset, location, source_format, writer.size, writer.sha256, filename, engines, key_hash
    )


def _file_problem(error: BaseException) -> ProblemError | None:
    if isinstance(error, ProblemError):
        return error
    if isinstance(error, BotoCoreError | ClientError):
        return storage_problem(error)
    if isinstance(error, MalformedBodyError):
        return ProblemError(400, str(error), kind="malformed-body")
    return None


async def _stream_file(events: Events, writer: S3StreamWriter, max_bytes: UploadLimit, filename: str) -> str:
    """Writes the file part to S3 as it arrives; its format is judged on the first bytes, before any is stored."""
    head = bytearray()
    source_format: str | None = None
    tail = b""
    received = 0
    async for event in events:
        if isinstance(event, PartEnd):
            break
        assert isinstance(event, bytes)
        received += len(event)
        if received > max_bytes.limit:
            raise max_bytes.problem()
        tail = (tail + event[-4:])[-4:]
        if source_format is not None:
            await writer.write(event)
            continue
        head += event
        if len(head) >= sniff.SNIFF_BYTES:
            # Exactly the window, however the body arrived in chunks, so a file is judged the same every time.
            source_format = _sniffed(bytes(head[: sniff.SNIFF_BYTES]), filename, complete=False)
            writer.content_type = CONTENT_TYPES[source_format]
            await writer.write(bytes(head))
            head = bytearray()
    if source_format is None:  # the whole file fitted in the sniffing window
        source_format = _sniffed(bytes(head), filename, complete=True)
        writer.content_type = CONTENT_TYPES[source_format]
        await writer.write(bytes(head))
    if source_format == "parquet":
        _format_checked(sniff.check_parquet_tail, tail)
    return source_format


def _sniffed(head: bytes, filename: str, *, complete: bool) -> str:
    source_format = _format_checked(sniff.sniff_format, head, complete=complete)
    _format_checked(sniff.check_extension, filename, source_format)
    return source_format


def _format_checked(check: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    try:
        return check(*args, **kwargs)
    except sniff.EmptyFileError as error:
        raise ProblemError(422, str(error), kind="empty-file") from None
    except sniff.UnsupportedFormatError as error:
        raise ProblemError(
            415, f"{error}; accepted formats: CSV, JSON lines, Parquet", kind="unsupported-format"
        ) from None


async def _expect_end(events: Events) -> None:
    """Reads to the closing boundary: only a body that arrived whole may become a run."""
    async for event in events:
        if isinstance(event, PartStart):
            raise ProblemError(422, "the file must be the last part of the form", kind="invalid-request")


async def _create_run(ctx: UploadContext, stored: StoredUpload) -> UploadAccepted:
    try:
        run = await run_in_threadpool(create_run, ctx.backends, run_for(stored))
    except RunExistsError:
        # Only an idempotent retry racing the first request gets here (random ids do not collide).
        earlier = await run_in_threadpool(get_run, ctx.backends, stored.upload_id)
        if earlier is None or earlier["spec"]["source"]["uri"] != stored.location.uri:
            await _remove_object(ctx, stored.location)
        if earlier is None:
            raise ProblemError(409, "a run with this upload id was created and deleted meanwhile; retry") from None
        return _replay(ctx, earlier, stored.dataset)
    except ProblemError as problem:
        await _remove_object(ctx, stored.location)
        problem.detail += "; the uploaded file was not kept, so the upload can simply be retried"
        problem.extensions["uploadId"] = stored.upload_id
        raise
    except Exception as error:
        await _remove_object(ctx, stored.location)
        raise ProblemError(
            500, "the IngestionRun could not be created; the uploaded file was not kept", uploadId=stored.upload_id
        ) from error
    return _accepted(ctx, run, replayed=False)


async def _remove_object(ctx: UploadContext, location: S3Location) -> None:
    try:
        await run_in_threadpool(ctx.backends.s3.delete_object, Bucket=location.bucket, Key=location.key)
    except (BotoCoreError, ClientError):
        log.exception("could not delete %s after a failed upload; delete it by hand", location.uri)


def _replay(ctx: UploadContext, earlier: dict[str, Any], dataset: str) -> UploadAccepted:
    if earlier["spec"]["dataset"] != dataset:
        raise ProblemError(
            422,
            f"this Idempotency-Key was already used for an upload to dataset {earlier['spec']['dataset']!r}",
            kind="idempotency-key-reused",
            uploadId=earlier["metadata"]["name"],
        )
    return _accepted(ctx, earlier, replayed=True)


def _accepted(ctx: UploadContext, run: dict[str, Any], *, replayed: bool) -> UploadAccepted:
    spec = run["spec"]
    source = spec["source"]
    return UploadAccepted(
        upload_id=spec["uploadId"],
        run_name=run["metadata"]["name"],
        dataset=spec["dataset"],
        status_url=ctx.status_url(run["metadata"]["name"]),
        object_uri=source["uri"],
        format=source["format"],
        size_bytes=source.get("sizeBytes", 0),
        sha256=source.get("sha256", ""),
        filename=source.get("filename", ""),
        replayed=replayed,
    )


def storage_problem(error: BotoCoreError | ClientError) -> ProblemError:
    log.warning("object store error during an upload: %s", error)
    if isinstance(error, ClientError):
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        code = error.response.get("Error", {}).get("Code", "")
        if status < 500:
            return ProblemError(500, f"the object store refused the upload ({code}); see the API log")
    return ProblemError(
        503,
        "the object store is unavailable, so uploads are refused for now; reads still work. Retry later",
        kind="storage-unavailable",
        headers={"Retry-After": "30"},
    )


@dataclass(frozen=True)
class UploadLimit:
    """The most bytes an upload may have, and the 413 problem that says whose limit it is."""

    limit: int
    problem: Callable[[], ProblemError]


def _max_file_bytes(settings: ApiSettings, contract: DatasetContract) -> UploadLimit:
    """The install's limit, or the dataset contract's max_file_bytes when that is smaller."""
    limit = contract.max_file_bytes
    if limit is None or limit >= settings.max_upload_bytes:
        return UploadLimit(settings.max_upload_bytes, lambda: _too_large(settings))
    return UploadLimit(
        limit,
        lambda: ProblemError(
            413,
            f"the file is larger than the {contract.name} contract's limit of {limit} bytes (max_file_bytes)",
            kind="upload-too-large",
            maxBytes=limit,
        ),
    )


def _too_large(settings: ApiSettings) -> ProblemError:
    return ProblemError(
        413,
        f"the file is larger than the limit of {settings.max_upload_bytes} bytes",
        kind="upload-too-large",
        maxBytes=settings.max_upload_bytes,
    )
