"""The pure decisions of table maintenance: which files compaction rewrites together, which snapshots expire,
which stored objects are orphans."""

from __future__ import annotations

import datetime as dt

import pytest
from pydantic import ValidationError

from lakehouse.contracts.model import TableMaintenance
from lakehouse.contracts.registry import ContractRegistry
from lakehouse.db.maintenance_log import lock_key
from lakehouse.maintenance.compaction import FileStats, plan_bins
from lakehouse.maintenance.expiry import SnapshotAge, snapshots_to_expire
from lakehouse.maintenance.orphans import StoredObject, normalized, orphans

MB = 1024 * 1024


def files(partition: str, *sizes_mb: float) -> list[FileStats]:
    return [FileStats(f"s3://w/t/data/{partition}-{i}.parquet", int(s * MB), partition) for i, s in enumerate(sizes_mb)]


def test_small_files_of_one_partition_are_packed_up_to_the_target() -> None:
    bins = plan_bins(files("a", 40, 30, 30, 20, 10, 5), target_bytes=64 * MB, min_input_files=3)

    assert [sorted(int(f.size_bytes / MB) for f in b) for b in bins] == [[20, 40], [30, 30], [5, 10]]
    assert all(sum(f.size_bytes for f in b) <= 64 * MB for b in bins)


def test_files_never_mix_partitions_and_large_files_stay() -> None:
    bins = plan_bins(files("a", 1, 1, 1, 100) + files("b", 1, 1, 1), target_bytes=64 * MB, min_input_files=3)

    assert {frozenset(f.partition for f in b) for b in bins} == {frozenset({"a"}), frozenset({"b"})}
    assert all(f.size_bytes < 64 * MB for b in bins for f in b)  # the 100 MB file is not rewritten


def test_a_partition_with_too_few_small_files_is_left_alone() -> None:
    assert plan_bins(files("a", 1, 1) + files("b", 1, 1, 1), target_bytes=64 * MB, min_input_files=3) == [
        files("b", 1, 1, 1)
    ]


def test_a_file_alone_in_its_bin_is_not_rewritten() -> None:
    # 40 + 40 > 64: each would be a bin of one, and rewriting a file as itself gains nothing.
    assert plan_bins(files("a", 40, 40), target_bytes=64 * MB, min_input_files=2) == []


NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)


def ages(*hours_ago: float) -> list[SnapshotAge]:
    return [SnapshotAge(i, int((NOW - dt.timedelta(hours=h)).timestamp() * 1000)) for i, h in enumerate(hours_ago)]


def test_snapshots_older_than_the_maximum_age_expire_except_the_newest_of_the_current_ancestry() -> None:
    snapshots = ages(100, 90, 80, 70, 1)  # ids 0..4, oldest first
    ancestry = [4, 3, 2, 1, 0]

    expired = snapshots_to_expire(snapshots, ancestry, {4}, NOW, dt.timedelta(hours=24), keep_last=2)

    assert expired == [0, 1, 2]  # 3 is old but among the newest 2; 4 is young (and current)


def test_keep_last_keeps_old_snapshots_and_protected_ones_never_expire() -> None:
    snapshots = ages(100, 90, 80)
    assert snapshots_to_expire(snapshots, [2, 1, 0], {2}, NOW, dt.timedelta(hours=1), keep_last=5) == []
    # a rolled-back snapshot (not in the ancestry) expires with age; a tagged one does not
    assert snapshots_to_expire(snapshots, [2, 0], {2, 0}, NOW, dt.timedelta(hours=1), keep_last=1) == [1]


def test_orphans_are_unreferenced_and_older_than_the_safety_age() -> None:
    old, young = NOW - dt.timedelta(days=4), NOW - dt.timedelta(minutes=5)
    stored = [
        StoredObject("s3://w/t/data/live.parquet", old),
        StoredObject("s3://w/t/data/orphan.parquet", old),
        StoredObject("s3://w/t/data/in-flight.parquet", young),
        StoredObject("s3://w/t/metadata/snap-1.avro", old),
    ]
    referenced = {normalized("s3a://w/t/data/live.parquet"), "s3://w/t/metadata/snap-1.avro"}

    assert orphans(stored, referenced, NOW - dt.timedelta(days=3)) == ["s3://w/t/data/orphan.parquet"]


def test_maintenance_defaults_and_limits() -> None:
    orders = ContractRegistry.default().get("orders")
    assert orders.maintenance == TableMaintenance()
    assert orders.maintenance.snapshot_expiry.max_age_hours >= 24 * 7  # run ids outlive any replay
    with pytest.raises(ValidationError):
        TableMaintenance.model_validate({"compaction": {"min_input_files": 1}})
    with pytest.raises(ValidationError):
        TableMaintenance.model_validate({"orphan_files": {"older_than_hours": 0}})
    with pytest.raises(ValidationError):
        TableMaintenance.model_validate({"interval": 5})


def test_lock_keys_are_32_bit_and_differ_per_table() -> None:
    keys = {lock_key(name) for name in ("bronze.orders", "bronze.customers", "bronze.orders_v2")}
    assert len(keys) == 3 and all(-(2**31) <= key < 2**31 for key in keys)
