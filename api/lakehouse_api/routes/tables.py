from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from lakehouse_api.access import allowed_tables, require_table
from lakehouse_api.deps import BackendsDep, ContractsDep, CurrentKey, SettingsDep
from lakehouse_api.problems import ProblemError
from lakehouse_api.routes import API_PREFIX
from lakehouse_api.schemas.tables import RowsPublic, TableLineagePublic, TablePublic, TablesPublic

router = APIRouter(prefix=f"{API_PREFIX}/tables", tags=["tables"])
Identifier = Annotated[str, Path(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=255)]
AsOf = Annotated[int | None, Query(alias="asOf", description="Snapshot id to time-travel to.")]
# Each route imports lakehouse_api.tables when it runs: reading tables needs PyIceberg's tables and Arrow
# (about 50 MiB resident), which an API process that only takes uploads should not hold (issue #13).


@router.get("", response_model=TablesPublic, summary="Tables of the catalog")
def read_tables(backends: BackendsDep, contracts: ContractsDep, caller: CurrentKey) -> TablesPublic:
    from lakehouse_api import tables

    allowed = allowed_tables(caller, contracts)
    data = [t for t in tables.list_tables(backends) if allowed is None or t.identifier in allowed]
    return TablesPublic(data=data, count=len(data))


@router.get("/{namespace}/{table}", response_model=TablePublic, summary="Schema, row count and snapshots")
def read_table(
    namespace: Identifier,
    table: Identifier,
    backends: BackendsDep,
    contracts: ContractsDep,
    caller: CurrentKey,
    as_of: AsOf = None,
    snapshots: Annotated[bool, Query(description="Include every snapshot.")] = False,
) -> TablePublic:
    from lakehouse_api import tables

    require_table(caller, contracts, f"{namespace}.{table}")
    return tables.describe_table(backends, namespace, table, as_of=as_of, with_snapshots=snapshots)


@router.get(
    "/{namespace}/{table}/lineage",
    response_model=TableLineagePublic,
    summary="Which runs and uploads produced each snapshot",
)
def read_lineage(
    namespace: Identifier, table: Identifier, backends: BackendsDep, contracts: ContractsDep, caller: CurrentKey
) -> TableLineagePublic:
    from lakehouse_api import tables

    require_table(caller, contracts, f"{namespace}.{table}")
    return tables.table_lineage(backends, namespace, table)


@router.get("/{namespace}/{table}/rows", response_model=RowsPublic, summary="A bounded preview of the rows")
def read_rows(
    namespace: Identifier,
    table: Identifier,
    backends: BackendsDep,
    settings: SettingsDep,
    contracts: ContractsDep,
    caller: CurrentKey,
    limit: Annotated[int, Query(ge=1, description="Rows to return, at most the server's preview limit.")] = 100,
    as_of: AsOf = None,
    upload_id: Annotated[str | None, Query(alias="uploadId", pattern=r"^[a-z0-9-]{1,63}$")] = None,
) -> RowsPublic:
    require_table(caller, contracts, f"{namespace}.{table}")
    if limit > settings.max_preview_rows:
        raise ProblemError(
            422,
            f"limit may be at most {settings.max_preview_rows}; this is a preview, query the table for more",
            kind="invalid-request",
            maxLimit=settings.max_preview_rows,
        )
    from lakehouse_api import tables

    return tables.preview_rows(backends, namespace, table, limit=limit, as_of=as_of, upload_id=upload_id)
