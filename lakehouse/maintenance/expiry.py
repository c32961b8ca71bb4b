"""Snapshot expiry: snapshots older than a maximum age leave the table's history, except the newest few.

Expiring a snapshot removes it from the metadata only; the files that only it referenced become orphans, which
orphan removal (orphans.py) deletes. With the snapshot goes its summary, and so the run id the bronze append
looks for before it appends (lakehouse/bronze/writer.py) and the upload id `lakehouse replay` checks: keep the
maximum age longer than any run may be retried or replayed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from pyiceberg.table import Table
from pyiceberg.table.snapshots import ancestors_of


@dataclass(frozen=True)
class SnapshotAge:
    snapshot_id: int
    timestamp_ms: int


def snapshots_to_expire(
    snapshots: Iterable[SnapshotAge],
    current_ancestry: list[int],
    protected: set[int],
    now: dt.datetime,
    max_age: dt.timedelta,
    keep_last: int,
) -> list[int]:
    """Snapshots committed before `now - max_age`, except the newest `keep_last` of the current snapshot's
    ancestry (newest first) and the `protected` ones (heads of branches, tags)."""
    cutoff_ms = (now - max_age).timestamp() * 1000
    kept = set(current_ancestry[:keep_last]) | protected
    return sorted(s.snapshot_id for s in snapshots if s.timestamp_ms < cutoff_ms and s.snapshot_id not in kept)


def expire_snapshots(table: Table, max_age: dt.timedelta, keep_last: int, now: dt.datetime | None = None) -> int:
    """Expires the table's old snapshots in one commit; how many."""
    metadata = table.metadata
    expired = snapshots_to_expire(
        [SnapshotAge(s.snapshot_id, s.timestamp_ms) for s in metadata.snapshots],
        [s.snapshot_id for s in ancestors_of(table.current_snapshot(), metadata)],
        {ref.snapshot_id for ref in metadata.refs.values()},
        now or dt.datetime.now(dt.UTC),
        max_age,
        keep_last,
    )
    if expired:
        table.maintenance.expire_snapshots().by_ids(expired).commit()
    return len(expired)
