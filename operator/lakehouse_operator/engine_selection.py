"""Which engine a run uses: the run's own choice first, else configuration and file size."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from lakehouse.k8s.ingestionrun.reasons import FailureReason
from lakehouse.k8s.ingestionrun.spec import IngestEngineName, TransformEngineName
from lakehouse_operator.engines.base import RunRejectedError
from lakehouse_operator.settings import OperatorSettings


def choose_ingest_engine(
    spec: dict[str, Any], settings: OperatorSettings, available: Collection[IngestEngineName]
) -> IngestEngineName:
    engine = (spec.get("engines") or {}).get("ingest") or settings.default_ingest_engine
    return IngestEngineName(_available(engine, "ingest", available))


def choose_transform_engine(
    spec: dict[str, Any], settings: OperatorSettings, available: Collection[TransformEngineName]
) -> TransformEngineName:
    chosen = (spec.get("engines") or {}).get("transform")
    if chosen:
        return TransformEngineName(_available(chosen, "transform", available))
    size = (spec.get("source") or {}).get("sizeBytes") or 0
    if size > settings.spark_threshold_bytes and TransformEngineName.SPARK in available:
        return TransformEngineName.SPARK
    return TransformEngineName(_available(settings.default_transform_engine, "transform", available))


def _available(engine: str, stage: str, available: Collection[str]) -> str:
    if engine not in available:
        raise RunRejectedError(
            FailureReason.ENGINE_UNAVAILABLE,
            f"the {stage} engine {engine!r} is not enabled in this operator (enabled: {', '.join(sorted(available))}); "
            "create the run with another engine or enable it",
        )
    return engine
