"""The schedule rules: which steps remain, and when they happen."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from rules.calendar import StepClock, next_business_day, public_holidays
from rules.policy import B2B_DEFAULT, B2C_DEFAULT, policy_for
from rules.schedule import plan_steps

DUE = date(2026, 3, 16)  # a Monday


@pytest.mark.parametrize(
    ("today", "expected"),
    [
        # before the due date: the whole policy
        (date(2026, 3, 1), [("pre_reminder", -5), ("reminder", 1), ("sms_reminder", 7),
                            ("call", 14), ("last_reminder", 21), ("mise_en_demeure", 30),
                            ("escalation", 38)]),
        # two days before: the late pre-reminder is still sent (at once)
        (date(2026, 3, 14), [("pre_reminder", -5), ("reminder", 1), ("sms_reminder", 7),
                             ("call", 14), ("last_reminder", 21), ("mise_en_demeure", 30),
                             ("escalation", 38)]),
        # on the due date itself: not "after" it yet
        (DUE, [("pre_reminder", -5), ("reminder", 1), ("sms_reminder", 7), ("call", 14),
               ("last_reminder", 21), ("mise_en_demeure", 30), ("escalation", 38)]),
        # one day late: starts at the reminder, no shift
        (date(2026, 3, 17), [("reminder", 1), ("sms_reminder", 7), ("call", 14),
                             ("last_reminder", 21), ("mise_en_demeure", 30),
                             ("escalation", 38)]),
        # 20 days late: the reminder happens today, spacing kept (shift 19 days)
        (date(2026, 4, 5), [("reminder", 20), ("sms_reminder", 26), ("call", 33),
                            ("last_reminder", 40), ("mise_en_demeure", 49),
                            ("escalation", 57)]),
    ],
)
def test_b2b_plan(today: date, expected: list[tuple[str, int]]) -> None:
    plan = plan_steps(B2B_DEFAULT, DUE, today)
    assert [(p.step.key, (p.day - DUE).days) for p in plan] == expected


def test_b2c_two_days_late_waits_for_its_first_overdue_step() -> None:
    plan = plan_steps(B2C_DEFAULT, DUE, date(2026, 3, 18))
    assert [(p.step.key, (p.day - DUE).days) for p in plan][:2] == [("reminder", 3),
                                                                     ("sms_reminder", 10)]


def test_policy_selection() -> None:
    assert policy_for("b2b").code == "b2b-default"
    assert policy_for("b2c").recovery_indemnity is False
    assert policy_for("b2c", "b2b-default").code == "b2b-default"
    with pytest.raises(ValueError, match="unknown dunning policy"):
        policy_for("b2b", "nope")


FR = public_holidays("FR", 2026, 2027)


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2026, 3, 16), date(2026, 3, 16)),   # Monday
        (date(2026, 3, 14), date(2026, 3, 16)),   # Saturday -> Monday
        (date(2026, 12, 25), date(2026, 12, 28)),  # Christmas (Friday) -> Monday
        (date(2026, 5, 1), date(2026, 5, 4)),     # Fête du travail (Friday) -> Monday
        (date(2026, 7, 14), date(2026, 7, 15)),   # Fête nationale (Tuesday) -> Wednesday
        (date(2027, 1, 1), date(2027, 1, 4)),     # New year (Friday) -> Monday
    ],
)
def test_next_business_day(day: date, expected: date) -> None:
    assert next_business_day(day, FR) == expected


def test_real_clock_sends_at_nine_paris_time() -> None:
    clock = StepClock(timezone="Europe/Paris", send_hour=9, holidays=FR)
    assert clock.at(date(2026, 1, 15)) == datetime(2026, 1, 15, 8, 0, tzinfo=UTC)  # CET
    assert clock.at(date(2026, 7, 15)) == datetime(2026, 7, 15, 7, 0, tzinfo=UTC)  # CEST
    assert clock.at(date(2026, 12, 25)) == datetime(2026, 12, 28, 8, 0, tzinfo=UTC)
    assert clock.day_of(datetime(2026, 7, 14, 22, 30, tzinfo=UTC)) == date(2026, 7, 15)


def test_compressed_clock() -> None:
    start = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    clock = StepClock(started_at=start, today=date(2026, 3, 1), day_seconds=10)
    assert clock.at(date(2026, 3, 4)) == datetime(2026, 3, 1, 12, 0, 30, tzinfo=UTC)
    assert clock.at(date(2026, 2, 27)) < start  # already due: happens at once
    assert clock.day_of(datetime(2026, 3, 1, 12, 0, 25, tzinfo=UTC)) == date(2026, 3, 3)
