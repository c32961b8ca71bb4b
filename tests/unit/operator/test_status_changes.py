import pytest
from lakehouse_operator.status_writer import ConditionUpdate, PhaseChange, apply_change

from lakehouse.k8s.ingestionrun.conditions import ConditionType
from lakehouse.k8s.ingestionrun.phase import ALLOWED_TRANSITIONS, Phase
from lakehouse.k8s.ingestionrun.status import IngestionRunStatus, RowCounts


def conditions_by_type(status: IngestionRunStatus) -> dict[str, dict]:
    return {c["type"]: c for c in status.to_k8s()["conditions"]}


def test_first_change_sets_phase_ready_condition_and_generation() -> None:
    status = apply_change(IngestionRunStatus(), PhaseChange(Phase.PENDING, "Accepted", "accepted"), generation=1)

    k8s = status.to_k8s()
    assert k8s["phase"] == "Pending"
    assert k8s["observedGeneration"] == 1
    ready = conditions_by_type(status)["Ready"]
    assert (ready["status"], ready["reason"], ready["message"]) == ("False", "Accepted", "accepted")
    assert "completionTime" not in k8s


def test_success_marks_ready_and_completion_and_keeps_other_conditions() -> None:
    ingesting = apply_change(
        IngestionRunStatus(),
        PhaseChange(
            Phase.INGESTING,
            "IngestStarted",
            "go",
            conditions=[ConditionUpdate(ConditionType.VALIDATED, "True", "SourceFound", "ok")],
        ),
        generation=1,
    )
    done = apply_change(
        ingesting,
        PhaseChange(Phase.SUCCEEDED, "BronzeCommitted", "5 rows", fields={"counts": RowCounts(written=5)}),
        generation=1,
    )

    conditions = conditions_by_type(done)
    assert conditions["Ready"]["status"] == "True"
    assert conditions["Validated"]["status"] == "True"
    assert done.to_k8s()["counts"] == {"written": 5}
    assert done.completion_time is not None and done.is_done


def test_failure_sets_failed_condition_with_reason() -> None:
    failed = apply_change(
        IngestionRunStatus(phase=Phase.INGESTING),
        PhaseChange(Phase.FAILED, "MissingColumns", "fix the header"),
        generation=2,
    )
    condition = conditions_by_type(failed)["Failed"]
    assert (condition["status"], condition["reason"], condition["observedGeneration"]) == (
        "True",
        "MissingColumns",
        2,
    )


LONG_AGO = "2020-01-01T00:00:00Z"


def ready_since(time: str) -> IngestionRunStatus:
    """A Pending run whose Ready condition has been False since `time`, long before the test runs."""
    first = apply_change(IngestionRunStatus(), PhaseChange(Phase.PENDING, "Accepted", "a"), generation=1)
    ready = conditions_by_type(first)["Ready"] | {"lastTransitionTime": time}
    return IngestionRunStatus.from_body({**first.to_k8s(), "conditions": [ready]})


def test_unchanged_condition_keeps_its_transition_time() -> None:
    again = apply_change(ready_since(LONG_AGO), PhaseChange(Phase.INGESTING, "IngestStarted", "b"), generation=1)

    ready = conditions_by_type(again)["Ready"]
    assert (ready["status"], ready["reason"], ready["lastTransitionTime"]) == ("False", "IngestStarted", LONG_AGO)


def test_changed_condition_gets_a_new_transition_time() -> None:
    done = apply_change(ready_since(LONG_AGO), PhaseChange(Phase.SUCCEEDED, "BronzeCommitted", "c"), generation=1)

    ready = conditions_by_type(done)["Ready"]
    assert ready["status"] == "True" and ready["lastTransitionTime"] > LONG_AGO


@pytest.mark.parametrize("phase", [Phase.SUCCEEDED, Phase.FAILED])
def test_terminal_phases_allow_no_moves(phase: Phase) -> None:
    assert phase.is_terminal and ALLOWED_TRANSITIONS[phase] == set()


def test_every_non_terminal_phase_can_fail() -> None:
    for phase, moves in ALLOWED_TRANSITIONS.items():
        if phase is None or not phase.is_terminal:
            assert Phase.FAILED in moves


@pytest.mark.parametrize(
    ("phase", "stage"),
    [
        (Phase.PENDING, "Validated"),
        (Phase.INGESTING, "Ingested"),
        (Phase.RAW_READY, "Transformed"),
        (Phase.TRANSFORMING, "Transformed"),
    ],
)
def test_failure_sets_the_failing_stages_condition_false(phase: Phase, stage: str) -> None:
    validated = ConditionUpdate(ConditionType.VALIDATED, "True", "SourceFound", "ok")
    before = apply_change(IngestionRunStatus(), PhaseChange(phase, "Go", "go", conditions=[validated]), generation=1)
    failed = apply_change(before, PhaseChange(Phase.FAILED, "MissingColumns", "fix the header"), generation=1)

    conditions = conditions_by_type(failed)
    assert (conditions[stage]["status"], conditions[stage]["reason"]) == ("False", "MissingColumns")
    assert conditions[stage]["message"] == "fix the header"
    if stage != "Validated":  # the stages before the failing one keep what they said
        assert conditions["Validated"]["status"] == "True"
