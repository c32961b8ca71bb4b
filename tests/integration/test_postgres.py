"""PostgreSQL of the local stack: migrations apply once and the metadata tables hold real rows."""

from __future__ import annotations

import uuid
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from lakehouse.db.migrate import DEFAULT_SQL_DIR, MigrationError, discover, migrate
from tests.utils.stack import stack_env

pytestmark = pytest.mark.integration


def test_migrations_apply_once_then_are_a_no_op(scratch_database_url: str) -> None:
    first = migrate(scratch_database_url)
    second = migrate(scratch_database_url)

    assert first == [m.version for m in discover(DEFAULT_SQL_DIR)]
    assert second == []
    with psycopg.connect(scratch_database_url) as conn:
        tables = {
            row[0]
            for row in conn.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")
        }
    assert {"workflow_execution", "job_metrics", "data_quality_metrics", "table_lineage"} <= tables


def test_edited_migration_is_refused(scratch_database_url: str, tmp_path: Path) -> None:
    migrate(scratch_database_url)
    first, *_ = discover(DEFAULT_SQL_DIR)
    (tmp_path / first.path.name).write_text(first.sql + "\n-- edited\n")

    with pytest.raises(MigrationError, match="changed after it was applied"):
        migrate(scratch_database_url, tmp_path)


def test_metadata_rows_round_trip_and_constraints_hold(scratch_database_url: str) -> None:
    migrate(scratch_database_url)
    run_id = f"run-{uuid.uuid4().hex[:8]}"
    with psycopg.connect(scratch_database_url) as conn:
        conn.execute(
            """INSERT INTO workflow_execution (run_id, dataset, upload_id, source_uri, source_format, phase)
               VALUES (%s, 'orders', %s, 's3://uploads/orders/a.csv', 'csv', 'Pending')""",
            (run_id, run_id),
        )
        conn.execute(
            """INSERT INTO job_metrics (run_id, stage, engine, status, rows_in, rows_out, rows_rejected,
                                        started_at, finished_at)
               VALUES (%s, 'ingest', 'builtin', 'succeeded', 10, 8, 2,
                       '2026-01-01T00:00:00Z', '2026-01-01T00:00:01.5Z')""",
            (run_id,),
        )
        conn.execute(
            """INSERT INTO data_quality_metrics (run_id, dataset, check_name, column_name,
                                                 passed_count, failed_count)
               VALUES (%s, 'orders', 'not_null', 'order_id', 10, 0),
                      (%s, 'orders', 'amount_positive', '', 8, 2)""",
            (run_id, run_id),
        )
        row = conn.execute("SELECT rows_out, duration_ms FROM job_metrics WHERE run_id = %s", (run_id,)).fetchone()
        checks = dict(
            conn.execute("SELECT check_name, passed FROM data_quality_metrics WHERE run_id = %s", (run_id,)).fetchall()
        )
    assert row == (8, 1500)
    assert checks == {"not_null": True, "amount_positive": False}

    with psycopg.connect(scratch_database_url) as conn, pytest.raises(psycopg.errors.CheckViolation):
        conn.execute("UPDATE workflow_execution SET phase = 'Exploded' WHERE run_id = %s", (run_id,))
    with psycopg.connect(scratch_database_url) as conn, pytest.raises(psycopg.errors.UniqueViolation):
        conn.execute(
            """INSERT INTO job_metrics (run_id, stage, engine, status)
               VALUES (%s, 'ingest', 'builtin', 'running')""",
            (run_id,),
        )


def test_stack_database_is_migrated() -> None:
    """`make up` applies the migrations to the stack's own database."""
    url = stack_env("DATABASE_URL")["DATABASE_URL"]
    assert conninfo_to_dict(url)["dbname"] == "lakehouse"
    with psycopg.connect(url) as conn:
        versions = [r[0] for r in conn.execute("SELECT version FROM schema_migrations ORDER BY version")]
    assert versions == [p.stem for p in sorted(DEFAULT_SQL_DIR.glob("[0-9][0-9][0-9]_*.sql"))]
