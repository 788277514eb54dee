"""When a dunning step happens: calendar days from the due date, moved to the
next business day of the customer's country, at the sending hour in their time zone.

With a compressed day (demo, benchmarks) a "day" lasts `day_seconds` from the
moment the workflow started, and the calendar does not apply.

Sending windows: no email or SMS on weekends or public holidays; SMS and call
tasks only inside their channel's hours, in the customer's time zone (B2C calls
default to Mon-Fri 10:00-13:00 and 14:00-20:00). A moment outside moves to the
start of the next allowed window.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

REAL_DAY_SECONDS = 86400

# A sending window: (first minute, end minute) after local midnight, end excluded.
Window = tuple[int, int]
ANY_HOUR: tuple[Window, ...] = ((0, 24 * 60),)
SMS_HOURS: tuple[Window, ...] = ((9 * 60, 20 * 60),)
B2C_CALL_HOURS: tuple[Window, ...] = ((10 * 60, 13 * 60), (14 * 60, 20 * 60))
B2B_CALL_HOURS: tuple[Window, ...] = ((9 * 60, 12 * 60 + 30), (14 * 60, 18 * 60))


def parse_windows(text: str) -> tuple[Window, ...]:
    """'10:00-13:00,14:00-20:00' -> ((600, 780), (840, 1200))."""
    windows = []
    for part in text.split(","):
        try:
            start, end = (_minutes(t) for t in part.strip().split("-"))
        except ValueError:
            raise ValueError(f"sending hours {part.strip()!r} are not like 10:00-13:00") from None
        if not 0 <= start < end <= 24 * 60:
            raise ValueError(f"sending hours {part.strip()!r}: start must be before end")
        windows.append((start, end))
    return tuple(sorted(windows))


def channel_hours(segment: str, *, sms: str, call_b2b: str,
                  call_b2c: str) -> tuple[tuple[str, tuple[Window, ...]], ...]:
    """The `StepClock.channel_hours` of a customer segment, from the settings' text."""
    call = call_b2c if segment == "b2c" else call_b2b
    return (("sms", parse_windows(sms)), ("call", parse_windows(call)))


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.strip().split(":")
    if not (hours.isdigit() and minutes.isdigit() and int(minutes) < 60):
        raise ValueError(hhmm)
    return int(hours) * 60 + int(minutes)


def next_allowed(local: datetime, windows: tuple[Window, ...],
                 days_off: frozenset[date] | tuple[date, ...] = ()) -> datetime:
    """`local` itself when it is a business day inside a window, else the start of
    the next window on a business day (same time zone as `local`)."""
    if not windows:
        raise ValueError("a channel needs at least one sending window")
    day = local.date()
    minute = local.hour * 60 + local.minute
    for _ in range(366):
        if day.weekday() < 5 and day not in days_off:
            for start, end in sorted(windows):
                if minute < end:
                    if minute >= start:
                        return local
                    at = datetime.combine(day, time(0), local.tzinfo) + timedelta(minutes=start)
                    return at
        day += timedelta(days=1)
        minute = -1
        local = datetime.combine(day, time(0), local.tzinfo)
    raise ValueError("no business day in a year")


@lru_cache(maxsize=64)
def public_holidays(country: str, first_year: int, last_year: int) -> tuple[date, ...]:
    """Public holidays of a country, from the `holidays` package. Computed outside
    the workflow (the package reads locale settings) and snapshotted into it."""
    import holidays  # only where workflows start: a worker never needs its tables

    years = range(first_year, last_year + 1)
    return tuple(sorted(holidays.country_holidays(country, years=years).keys()))


def next_business_day(day: date, days_off: frozenset[date] | tuple[date, ...] = ()) -> date:
    """`day` itself when it is a business day, else the first one after it."""
    while day.weekday() >= 5 or day in days_off:
        day += timedelta(days=1)
    return day


@dataclass(frozen=True)
class StepClock:
    """Turns a policy day into an instant. Captured once when the workflow starts."""

    started_at: datetime = datetime(1970, 1, 1, tzinfo=UTC)
    today: date = date(1970, 1, 1)
    day_seconds: int = REAL_DAY_SECONDS
    timezone: str = "Europe/Paris"
    send_hour: int = 9
    holidays: tuple[date, ...] = ()
    # Per-channel hours (channel name -> windows); a channel not listed may be sent
    # at any hour of a business day. Used by `at_for`; `at` is unchanged.
    channel_hours: tuple[tuple[str, tuple[Window, ...]], ...] = (
        ("sms", SMS_HOURS), ("call", B2B_CALL_HOURS))

    @property
    def compressed(self) -> bool:
        return self.day_seconds != REAL_DAY_SECONDS

    def at(self, day: date) -> datetime:
        if self.compressed:
            return self.started_at + timedelta(seconds=(day - self.today).days * self.day_seconds)
        local = datetime.combine(
            next_business_day(day, self.holidays), time(self.send_hour), ZoneInfo(self.timezone)
        )
        return local.astimezone(UTC)

    def at_for(self, day: date, channel: str) -> datetime:
        """`at(day)` moved into the channel's sending hours on a business day."""
        if self.compressed:
            return self.at(day)
        zone = ZoneInfo(self.timezone)
        local = datetime.combine(next_business_day(day, self.holidays), time(self.send_hour),
                                 zone)
        windows = dict(self.channel_hours).get(channel, ANY_HOUR)
        return next_allowed(local, windows, self.holidays).astimezone(UTC)

    def day_of(self, instant: datetime) -> date:
        """The policy day an instant falls on (inverse of `at`, to the day)."""
        if self.compressed:
            elapsed = (instant - self.started_at).total_seconds()
            return self.today + timedelta(days=int(elapsed // self.day_seconds))
        return instant.astimezone(ZoneInfo(self.timezone)).date()
