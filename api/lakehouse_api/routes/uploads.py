from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Request

from lakehouse.k8s.ingestionrun.phase import Phase
from lakehouse_api import runs
from lakehouse_api.access import require_dataset
from lakehouse_api.deps import BackendsDep, ContractsDep, CurrentKey, SettingsDep
from lakehouse_api.problems import ProblemError
from lakehouse_api.routes import API_PREFIX
from lakehouse_api.schemas.uploads import UploadAccepted, UploadCreate, UploadPublic, UploadsPublic
from lakehouse_api.uploads.multipart import multipart_boundary
from lakehouse_api.uploads.service import UploadContext, accept_upload, check_declared_length

router = APIRouter(prefix=f"{API_PREFIX}/uploads", tags=["uploads"])
UploadId = Annotated[str, Path(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=63)]

# The body is parsed by hand (streamed), so its shape is declared for the OpenAPI document here.
_FORM_SCHEMA = UploadCreate.model_json_schema(by_alias=False)
_FORM_SCHEMA["properties"]["file"] = {"type": "string", "format": "binary", "description": "The file; last part."}
_FORM_SCHEMA["required"] = ["dataset", "file"]
UPLOAD_OPENAPI: dict[str, Any] = {
    "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": _FORM_SCHEMA}}}
}
UPLOAD_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"description": text, "content": {"application/problem+json": {}}}
    for status, text in {
        401: "No API key",
        403: "Invalid API key, or a key not allowed to use the dataset",
        413: "File larger than the limit",
        415: "Not multipart, or the file is not CSV, JSON lines or Parquet",
        429: "Too many requests with this key; retry after Retry-After seconds",
        422: "Unknown dataset, bad field, empty file, or Idempotency-Key reused for another dataset",
        503: "Object store or Kubernetes unavailable; nothing was kept",
    }.items()
}


@router.post(
    "",
    status_code=202,
    response_model=UploadAccepted,
    responses=UPLOAD_ERRORS,
    openapi_extra=UPLOAD_OPENAPI,
    summary="Upload a file; it is streamed to S3 and becomes an IngestionRun",
)
async def create_upload(
    request: Request,
    settings: SettingsDep,
    backends: BackendsDep,
    contracts: ContractsDep,
    caller: CurrentKey,
    idempotency_key: Annotated[
        str | None,
        Header(
            max_length=255,
            pattern=r"^[\x21-\x7e]+$",
            description="Retrying with the same key returns the first upload's run instead of a new one.",
        ),
    ] = None,
) -> UploadAccepted:
    boundary = multipart_boundary(request.headers.get("content-type"))
    if boundary is None:
        raise ProblemError(415, "send the upload as multipart/form-data", kind="unsupported-media-type")
    check_declared_length(request.headers.get("content-length"), settings)

    def status_url(name: str) -> str:
        return str(request.url_for("read_upload", upload_id=name))

    context = UploadContext(settings, backends, contracts, caller, idempotency_key, status_url)
    return await accept_upload(context, request.stream(), boundary)


@router.get("", response_model=UploadsPublic, summary="Uploads and their runs, newest first")
def read_uploads(
    backends: BackendsDep,
    caller: CurrentKey,
    dataset: Annotated[str | None, Query(max_length=63)] = None,
    phase: Phase | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> UploadsPublic:
    if dataset is not None:
        require_dataset(caller, dataset, "list the uploads of")
    matching = [
        run
        for run in runs.list_runs(backends)
        if caller.may_use(run.get("spec", {}).get("dataset", ""))
        and (dataset is None or run.get("spec", {}).get("dataset") == dataset)
        and (phase is None or (run.get("status") or {}).get("phase") == phase.value)
    ]
    page = matching[offset : offset + limit]
    return UploadsPublic(data=[UploadPublic.from_run(r) for r in page], count=len(matching))


@router.get("/{upload_id}", response_model=UploadPublic, summary="One upload: phase, conditions, counts, events")
def read_upload(upload_id: UploadId, backends: BackendsDep, caller: CurrentKey) -> UploadPublic:
    run = runs.get_run(backends, upload_id)
    if run is None:
        raise ProblemError(404, f"no upload {upload_id!r}", kind="upload-not-found")
    require_dataset(caller, run["spec"]["dataset"], f"read upload {upload_id} of")
    return UploadPublic.from_run(run, runs.run_events(backends, upload_id))
