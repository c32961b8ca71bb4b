import datetime as dt

from lakehouse.events import RAW_DATA_READY, PipelineEvent


def event(topic: str = RAW_DATA_READY, run_id: str = "u-1") -> PipelineEvent:
    return PipelineEvent(
        topic=topic,
        run_id=run_id,
        upload_id=run_id,
        data={"rows": 3},
        time=dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
    )


def test_cloudevent_shape() -> None:
    ce = event().to_cloudevent()
    assert ce["specversion"] == "1.0"
    assert ce["type"] == "dev.lakehouse.ingestion.raw-data-ready"
    assert ce["time"] == "2026-01-02T03:04:05Z"
    assert ce["data"] == {"runId": "u-1", "uploadId": "u-1", "rows": 3}


def test_event_id_is_stable_per_run_and_topic() -> None:
    assert event().id == event().id
    assert event().id != event(run_id="u-2").id
    assert event().id != event(topic="bronze-layer-complete").id
