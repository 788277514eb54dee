"""Business days and sending hours, per channel, in the customer's time zone."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from rules.calendar import (
    B2C_CALL_HOURS,
    SMS_HOURS,
    StepClock,
    next_allowed,
    parse_windows,
    public_holidays,
)

PARIS = ZoneInfo("Europe/Paris")
FR_2026 = public_holidays("FR", 2026, 2026)


def paris(year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=PARIS)


@pytest.mark.parametrize(
    ("moment", "windows", "expected"),
    [
        # Tuesday 11:00 inside the morning call window: now.
        (paris(2026, 11, 24, 11, 0), B2C_CALL_HOURS, paris(2026, 11, 24, 11, 0)),
        # Lunch break 13:30 -> 14:00.
        (paris(2026, 11, 24, 13, 30), B2C_CALL_HOURS, paris(2026, 11, 24, 14, 0)),
        # 09:00 -> 10:00 for B2C calls.
        (paris(2026, 11, 24, 9, 0), B2C_CALL_HOURS, paris(2026, 11, 24, 10, 0)),
        # 20:00 is the end (excluded) -> next morning 10:00.
        (paris(2026, 11, 24, 20, 0), B2C_CALL_HOURS, paris(2026, 11, 25, 10, 0)),
        # Friday 21:00 -> Monday 10:00.
        (paris(2026, 11, 27, 21, 0), B2C_CALL_HOURS, paris(2026, 11, 30, 10, 0)),
        # SMS: Saturday -> Monday 09:00.
        (paris(2026, 11, 28, 12, 0), SMS_HOURS, paris(2026, 11, 30, 9, 0)),
        # SMS before 09:00 -> 09:00; at 19:59 -> now.
        (paris(2026, 11, 24, 7, 30), SMS_HOURS, paris(2026, 11, 24, 9, 0)),
        (paris(2026, 11, 24, 19, 59), SMS_HOURS, paris(2026, 11, 24, 19, 59)),
        # Public holiday (11 November 2026, a Wednesday) -> Thursday.
        (paris(2026, 11, 11, 10, 0), SMS_HOURS, paris(2026, 11, 12, 9, 0)),
        # Christmas Friday, then the weekend -> Monday 28 December.
        (paris(2026, 12, 24, 20, 30), SMS_HOURS, paris(2026, 12, 28, 9, 0)),
    ],
)
def test_next_allowed(moment, windows, expected):
    assert next_allowed(moment, windows, FR_2026) == expected


def test_step_clock_per_channel_in_customer_time_zone():
    clock = StepClock(timezone="America/Martinique", send_hour=9, holidays=FR_2026,
                      channel_hours=(("sms", parse_windows("10:00-18:00")),
                                     ("call", B2C_CALL_HOURS)))
    martinique = ZoneInfo("America/Martinique")
    # Email on a business day: the sending hour, unchanged from `at`.
    assert clock.at_for(date(2026, 11, 24), "email") == clock.at(date(2026, 11, 24))
    assert clock.at_for(date(2026, 11, 24), "sms") == datetime(
        2026, 11, 24, 10, tzinfo=martinique).astimezone(UTC)
    # A Sunday call task -> Monday 10:00 local.
    assert clock.at_for(date(2026, 11, 29), "call") == datetime(
        2026, 11, 30, 10, tzinfo=martinique).astimezone(UTC)
    # Email on a holiday moves like `at` does (next business day, sending hour).
    assert clock.at_for(date(2026, 11, 11), "email") == datetime(
        2026, 11, 12, 9, tzinfo=martinique).astimezone(UTC)


def test_default_clock_keeps_existing_behaviour():
    clock = StepClock(holidays=FR_2026)
    assert clock.at(date(2026, 11, 28)) == datetime(2026, 11, 30, 9, tzinfo=PARIS).astimezone(UTC)
    assert clock.at_for(date(2026, 11, 28), "sms") == clock.at(date(2026, 11, 28))


@pytest.mark.parametrize("text", ["10h-13h", "13:00-10:00", "10:00-25:00", "10:75-11:00"])
def test_bad_hours_are_refused(text):
    with pytest.raises(ValueError, match="sending hours"):
        parse_windows(text)


def test_channel_hours_from_settings():
    from rules.calendar import channel_hours
    from settings import Settings

    s = Settings()
    hours = dict(channel_hours("b2c", sms=s.sms_hours, call_b2b=s.call_hours_b2b,
                               call_b2c=s.call_hours_b2c))
    assert hours == {"sms": SMS_HOURS, "call": B2C_CALL_HOURS}
    assert dict(channel_hours("b2b", sms=s.sms_hours, call_b2b=s.call_hours_b2b,
                              call_b2c=s.call_hours_b2c))["call"] == ((540, 750), (840, 1080))
