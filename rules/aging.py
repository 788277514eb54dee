"""Aged balance and DSO, as pure functions.

Buckets by days past the due date: not due, 1-30, 31-60, 61-90, over 90. The SQL
in `ledger/reports.py` turns `bucket_bounds` into due-date cut-offs, so the ledger
never has to be loaded to age it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta


@dataclass(frozen=True)
class AgingBucket:
    key: str
    # Inclusive range of days overdue; None = unbounded.
    min_days: int | None
    max_days: int | None


BUCKETS: tuple[AgingBucket, ...] = (
    AgingBucket("not_due", None, 0),
    AgingBucket("1-30", 1, 30),
    AgingBucket("31-60", 31, 60),
    AgingBucket("61-90", 61, 90),
    AgingBucket("over_90", 91, None),
)


def days_overdue(due_date: date, today: date) -> int:
    """Days past the due date; 0 when not yet due (or due today)."""
    return max(0, (today - due_date).days)


def bucket_for(days: int) -> str:
    for bucket in BUCKETS:
        if (bucket.min_days is None or days >= bucket.min_days) and (
                bucket.max_days is None or days <= bucket.max_days):
            return bucket.key
    raise ValueError(f"no aging bucket for {days} days")


def due_date_bounds(bucket: AgingBucket, today: date) -> tuple[date | None, date | None]:
    """(earliest, latest) due date, inclusive, of the invoices in a bucket."""
    earliest = None if bucket.max_days is None else today - timedelta(days=bucket.max_days)
    latest = None if bucket.min_days is None else today - timedelta(days=bucket.min_days)
    return earliest, latest


def dso(receivables_cents: int, credit_sales_cents: int, period_days: int) -> float | None:
    """Days sales outstanding: receivables / credit sales of the period x its days.
    None when there were no sales in the period (DSO is undefined)."""
    if period_days <= 0:
        raise ValueError("period_days must be positive")
    if receivables_cents < 0 or credit_sales_cents < 0:
        raise ValueError("amounts must not be negative")
    if credit_sales_cents == 0:
        return None
    return round(receivables_cents / credit_sales_cents * period_days, 1)
