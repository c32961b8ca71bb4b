"""operator/lakehouse_operator/peering.py: how replicas are told apart and ranked."""

from __future__ import annotations

from lakehouse_operator.peering import priority_by_age, run_options


def test_an_earlier_start_has_the_higher_priority_and_no_two_starts_tie() -> None:
    """Kopf pauses every replica when two share a priority, and the oldest must keep its runs."""
    started = 1_796_000_000_000_000_000  # 2026-11 in nanoseconds
    assert priority_by_age(started) > priority_by_age(started + 1_000)  # one microsecond later
    assert priority_by_age(started) == priority_by_age(started + 999)  # the same microsecond
    assert 0 < priority_by_age(started) < 2**53  # a JSON number that stays exact
    assert priority_by_age() < priority_by_age(started)  # now is later than that


def test_without_a_peering_name_the_operator_runs_alone() -> None:
    assert run_options("") == {"standalone": True}
    options = run_options("lakehouse-operator")
    assert options["standalone"] is False and options["peering_name"] == "lakehouse-operator"
    assert isinstance(options["priority"], int)
