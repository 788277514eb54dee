"""When a dunning step happens: calendar days from the due date, moved to the
next business day of the customer's country, at the sending hour in their time zone.

With a compressed day (demo, benchmarks) a "day" lasts `day_seconds` from the
moment the workflow started, and the calendar does not apply.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

REAL_DAY_SECONDS = 86400


@lru_cache(maxsize=64)
def public_holidays(country: str, first_year: int, last_year: int) -> tuple[date, ...]:
    """Public holidays of a country, from the `holidays` package. Computed outside
    the workflow (the package reads locale settings) and snapshotted into it."""
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

    def day_of(self, instant: datetime) -> date:
        """The policy day an instant falls on (inverse of `at`, to the day)."""
        if self.compressed:
            elapsed = (instant - self.started_at).total_seconds()
            return self.today + timedelta(days=int(elapsed // self.day_seconds))
        return instant.astimezone(ZoneInfo(self.timezone)).date()
