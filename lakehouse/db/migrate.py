"""Apply the ordered SQL migrations in ``lakehouse/db/migrations/`` to the platform database, once each.

Safe to run any number of times and from several processes at once: an advisory lock
serialises runners, each file is applied in its own transaction, and a file that was
edited after it was applied is refused rather than silently skipped.

The migrations are package data, so the installed wheel and the images migrate exactly like the checkout:
``DATABASE_URL=... python -m lakehouse.db.migrate``.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import re
import sys
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

import psycopg

log = logging.getLogger("lakehouse.migrate")

DEFAULT_SQL_DIR: Traversable = resources.files("lakehouse.db") / "migrations"
_MIGRATION_NAME = re.compile(r"[0-9]{3}_.*\.sql")
# Any constant works; it only has to be the same for every runner.
MIGRATION_LOCK_KEY = 0x1A4E_0001


@dataclass(frozen=True)
class Migration:
    version: str
    path: Traversable

    @property
    def sql(self) -> str:
        return self.path.read_text(encoding="utf-8")

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


class MigrationError(RuntimeError):
    pass


def discover(sql_dir: Traversable) -> list[Migration]:
    """Files named ``NNN_description.sql``, in version order."""
    files = sorted((p for p in sql_dir.iterdir() if _MIGRATION_NAME.fullmatch(p.name)), key=lambda p: p.name)
    migrations = [Migration(p.name.removesuffix(".sql"), p) for p in files]
    if not migrations:
        raise MigrationError(f"no migrations found in {sql_dir}")
    return migrations


def migrate(database_url: str, sql_dir: Traversable = DEFAULT_SQL_DIR) -> list[str]:
    """Apply pending migrations; return the versions applied by this call."""
    applied_now: list[str] = []
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_KEY,))
        try:
            conn.execute(
                """CREATE TABLE IF NOT EXISTS schema_migrations (
                       version text PRIMARY KEY,
                       checksum text NOT NULL,
                       applied_at timestamptz NOT NULL DEFAULT now())"""
            )
            done = dict(conn.execute("SELECT version, checksum FROM schema_migrations").fetchall())
            for migration in discover(sql_dir):
                if migration.version in done:
                    if done[migration.version] != migration.checksum:
                        raise MigrationError(
                            f"{migration.path.name} changed after it was applied; "
                            "add a new migration instead of editing an applied one"
                        )
                    continue
                with conn.transaction():
                    conn.execute(migration.sql)
                    conn.execute(
                        "INSERT INTO schema_migrations (version, checksum) VALUES (%s, %s)",
                        (migration.version, migration.checksum),
                    )
                log.info("applied %s", migration.path.name)
                applied_now.append(migration.version)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_KEY,))
    return applied_now


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sql-dir", type=Path, default=DEFAULT_SQL_DIR, help="default: the packaged migrations")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    database_url = os.environ.get("DATABASE_URL")
    if not database_url:
        print('DATABASE_URL is not set (eval "$(make -s env)")', file=sys.stderr)
        return 2
    applied = migrate(database_url, args.sql_dir)
    print(f"migrations: {len(applied)} applied" + (f" ({', '.join(applied)})" if applied else ", up to date"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
