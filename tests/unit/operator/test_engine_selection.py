import pytest
from lakehouse_operator.engine_selection import choose_ingest_engine, choose_transform_engine
from lakehouse_operator.engines.base import RunRejectedError
from lakehouse_operator.settings import OperatorSettings

SETTINGS = OperatorSettings(LAKEHOUSE_SPARK_THRESHOLD_BYTES=1000)


def test_run_choice_wins() -> None:
    spec = {"engines": {"transform": "arrow"}, "source": {"sizeBytes": 10**9}}
    assert choose_transform_engine(spec, SETTINGS, {"arrow", "spark"}) == "arrow"


def test_large_files_go_to_spark_when_available() -> None:
    big = {"source": {"sizeBytes": 5000}}
    assert choose_transform_engine(big, SETTINGS, {"arrow", "spark"}) == "spark"
    assert choose_transform_engine(big, SETTINGS, {"arrow"}) == "arrow"
    assert choose_transform_engine({"source": {"sizeBytes": 10}}, SETTINGS, {"arrow", "spark"}) == "arrow"


def test_unavailable_engine_is_a_permanent_rejection() -> None:
    with pytest.raises(RunRejectedError) as error:
        choose_ingest_engine({"engines": {"ingest": "nifi"}}, SETTINGS, {"builtin"})
    assert error.value.reason == "EngineUnavailable"
    assert "nifi" in error.value.message


def test_backoff_grows_and_is_capped() -> None:
    settings = OperatorSettings(LAKEHOUSE_RETRY_BASE_DELAY=1, LAKEHOUSE_RETRY_MAX_DELAY=5)
    assert [settings.retry_delay(r) for r in range(5)] == [1, 2, 4, 5, 5]


def test_the_retry_window_is_the_sum_of_the_delays_between_attempts() -> None:
    assert OperatorSettings().retry_window() == 2 + 4 + 8 + 16  # the defaults: 5 attempts from 2 s
    capped = OperatorSettings(LAKEHOUSE_MAX_ATTEMPTS=5, LAKEHOUSE_RETRY_BASE_DELAY=1, LAKEHOUSE_RETRY_MAX_DELAY=5)
    assert capped.retry_window() == 1 + 2 + 4 + 5
    assert OperatorSettings(LAKEHOUSE_MAX_ATTEMPTS=1).retry_window() == 0
