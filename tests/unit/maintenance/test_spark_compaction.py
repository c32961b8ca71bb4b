"""Which engine compacts a table, and how the Spark compaction job is started (no servers, no Spark)."""

from __future__ import annotations

from lakehouse.jobs.compact_table import rewrite_options
from lakehouse.maintenance.compaction import (
    COMPACTION,
    COMPACTION_ID_PROPERTY,
    ENGINE_PROPERTY,
    OPERATION_PROPERTY,
    CompactionPlan,
    FileStats,
    compaction_properties,
)
from lakehouse.maintenance.spark_compaction import SparkCompactionSettings, choose_engine, local_command

MB = 1024 * 1024


def planned(*sizes_mb: int) -> CompactionPlan:
    return CompactionPlan(bins=[[FileStats(f"s3://w/t/{i}.parquet", s * MB, "p") for i, s in enumerate(sizes_mb)]])


def settings(**values: str) -> SparkCompactionSettings:
    return SparkCompactionSettings(**{"SPARK_JARS": "/jars/iceberg.jar", "LAKEHOUSE_SPARK_SUBMIT": "/bin/ss", **values})


def test_data_above_the_datasets_threshold_goes_to_spark_and_below_it_to_pyiceberg() -> None:
    assert choose_engine(planned(3, 3), threshold_mb=5, settings=settings()) == "spark"
    assert choose_engine(planned(2, 3), threshold_mb=5, settings=settings()) == "pyiceberg"  # not above it


def test_without_a_dataset_threshold_the_operators_applies() -> None:
    above = settings(LAKEHOUSE_COMPACTION_SPARK_THRESHOLD_BYTES=str(4 * MB))
    assert choose_engine(planned(3, 3), threshold_mb=None, settings=above) == "spark"
    assert choose_engine(planned(3, 3), threshold_mb=None, settings=settings()) == "pyiceberg"  # 1 GiB by default


def test_nothing_to_rewrite_or_no_spark_here_means_pyiceberg() -> None:
    assert choose_engine(CompactionPlan(), threshold_mb=0, settings=settings()) == "pyiceberg"
    assert choose_engine(planned(3, 3), threshold_mb=0, settings=settings(SPARK_JARS="")) == "pyiceberg"


def test_the_job_is_told_the_table_and_the_sizes_and_nothing_else() -> None:
    command = local_command(settings(), "bronze.orders", 128 * MB, 5, "c0ffee")

    assert command[0] == "/bin/ss" and "spark.driver.extraClassPath=/jars/iceberg.jar" in command
    assert command[-8:] == [
        "--table", "bronze.orders", "--target-file-size-bytes", str(128 * MB), "--min-input-files", "5",
        "--compaction-id", "c0ffee",
    ]  # fmt: skip


def test_both_engines_mark_their_commits_as_compactions() -> None:
    assert compaction_properties("pyiceberg") == {OPERATION_PROPERTY: COMPACTION, ENGINE_PROPERTY: "pyiceberg"}
    assert compaction_properties("spark", "c0ffee") == {
        OPERATION_PROPERTY: COMPACTION,
        ENGINE_PROPERTY: "spark",
        COMPACTION_ID_PROPERTY: "c0ffee",
    }


def test_spark_treats_as_small_what_pyiceberg_does() -> None:
    options = rewrite_options(100 * MB, 5)
    assert options["min-file-size-bytes"] == str(75 * MB) and options["min-input-files"] == "5"
    assert options["partial-progress.enabled"] == "false"
