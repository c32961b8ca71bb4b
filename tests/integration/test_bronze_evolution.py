"""A contract change reaches its existing bronze table through the real Iceberg REST catalog: new columns,
new partitioning and sort order, rows written before and after both readable, impossible changes refused."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
import yaml
from pyiceberg.catalog import Catalog

from lakehouse.bronze.evolution import IncompatibleContractError, evolve_to_contract
from lakehouse.bronze.transform import RunStamp, to_bronze
from lakehouse.bronze.writer import append_exactly_once, ensure_table
from lakehouse.contracts.model import DatasetContract
from lakehouse.contracts.registry import DEFAULT_CONTRACTS_DIR, parse_contract
from lakehouse.devtools.sample_data import orders
from lakehouse.ingest.builtin import ingest_bytes

pytestmark = pytest.mark.integration
ORDERS_YAML = (DEFAULT_CONTRACTS_DIR / "orders.yaml").read_text()
# Version 2: a new optional column, daily instead of monthly partitions, sorted by order_id only.
_V2 = yaml.safe_load(ORDERS_YAML)
_V2["version"] = 2
_V2["columns"].append({"name": "channel", "type": "string", "required": False})
_V2["bronze"]["partitioning"][0]["transform"] = "day"
_V2["bronze"]["sort_by"] = ["order_id"]
ORDERS_V2_YAML = yaml.safe_dump(_V2, sort_keys=False)


def append(catalog: Catalog, contract: DatasetContract, csv: bytes, table: str) -> int:
    run = f"evo-{uuid.uuid4().hex[:8]}"
    raw = ingest_bytes(contract, csv, "csv", run, run).raw
    stamp = RunStamp(run, dt.date(2026, 11, 27), dt.datetime(2026, 11, 27, 12, 0))
    return append_exactly_once(catalog, contract, to_bronze(contract, raw, stamp), run, run, table).rows_written


def test_contract_changes_evolve_the_table_and_keep_old_rows(catalog: Catalog) -> None:
    v1, v2 = parse_contract(ORDERS_YAML, "orders.yaml"), parse_contract(ORDERS_V2_YAML, "orders.yaml")
    assert "channel" in [c.name for c in v2.columns]
    table_name = f"bronze_it.evo_{uuid.uuid4().hex[:8]}"
    assert append(catalog, v1, orders(30).csv_bytes(), table_name) == 30
    spec_before = catalog.load_table(table_name).spec()

    with_channel = orders(20, first_order_id=1000).csv_bytes().replace(b"date\n", b"date,channel\n", 1)
    with_channel = b"\n".join(
        line + (b",web" if index else b"") for index, line in enumerate(with_channel.rstrip(b"\n").split(b"\n"))
    )
    assert append(catalog, v2, with_channel, table_name) == 20

    table = catalog.load_table(table_name)
    assert table.schema().find_field("channel").required is False
    assert [str(f.transform) for f in table.spec().fields] == ["day"]
    assert table.spec().spec_id != spec_before.spec_id
    assert [table.schema().find_column_name(f.source_id) for f in table.sort_order().fields] == ["order_id"]
    rows = table.scan().to_arrow().to_pylist()
    assert len(rows) == 50
    assert {r["channel"] for r in rows if r["order_id"] < 1000} == {None}
    assert {r["channel"] for r in rows if r["order_id"] >= 1000} == {"web"}
    files = table.inspect.files().to_pylist()
    assert {f["spec_id"] for f in files} == {spec_before.spec_id, table.spec().spec_id}
    # Evolving again is a no-op: no new metadata.
    snapshot_log = len(table.metadata.metadata_log)
    assert not evolve_to_contract(table, v2).changed
    assert len(catalog.load_table(table_name).metadata.metadata_log) == snapshot_log


def test_a_type_iceberg_cannot_promote_is_refused_with_the_column(catalog: Catalog) -> None:
    v1 = parse_contract(ORDERS_YAML, "orders.yaml")
    table_name = f"bronze_it.evo_{uuid.uuid4().hex[:8]}"
    ensure_table(catalog, v1, table_name)
    as_text = parse_contract(
        ORDERS_YAML.replace("  - name: customer_id\n    type: long", "  - name: customer_id\n    type: string"),
        "orders.yaml",
    )

    with pytest.raises(IncompatibleContractError, match=r"customer_id is long, .* now says string"):
        ensure_table(catalog, as_text, table_name)


def test_dropped_and_relaxed_columns_become_optional(catalog: Catalog) -> None:
    v1 = parse_contract(ORDERS_YAML, "orders.yaml")
    table_name = f"bronze_it.evo_{uuid.uuid4().hex[:8]}"
    assert append(catalog, v1, orders(10).csv_bytes(), table_name) == 10
    # customer_id leaves the contract; amount stays but is no longer required.
    without_customer = ORDERS_YAML.replace("  - name: customer_id\n    type: long\n    required: true\n", "").replace(
        "  - name: amount\n    type: decimal(10,2)\n    required: true",
        "  - name: amount\n    type: decimal(10,2)\n    required: false",
    )
    v2 = parse_contract(without_customer, "orders.yaml")
    assert "customer_id" not in [c.name for c in v2.columns]
    csv = b"order_id,amount,date\n5000,,2025-06-01\n5001,3.50,2025-06-02\n"

    assert append(catalog, v2, csv, table_name) == 2

    table = catalog.load_table(table_name)
    assert table.schema().find_field("customer_id").required is False
    assert table.schema().find_field("amount").required is False
    rows = {r["order_id"]: r for r in table.scan().to_arrow().to_pylist()}
    assert len(rows) == 12
    assert rows[5000]["customer_id"] is None and rows[5000]["amount"] is None
    assert rows[1]["customer_id"] is not None
