"""Table tests of the aging buckets, DSO and call priority rules."""

from __future__ import annotations

from datetime import date

import pytest

from rules.aging import BUCKETS, bucket_for, days_overdue, dso, due_date_bounds
from rules.priority import CallContext, call_priority

TODAY = date(2026, 11, 24)


@pytest.mark.parametrize(("due", "days", "bucket"), [
    (date(2026, 12, 31), 0, "not_due"),
    (TODAY, 0, "not_due"),
    (date(2026, 11, 23), 1, "1-30"),
    (date(2026, 10, 25), 30, "1-30"),
    (date(2026, 10, 24), 31, "31-60"),
    (date(2026, 9, 25), 60, "31-60"),
    (date(2026, 9, 24), 61, "61-90"),
    (date(2026, 8, 26), 90, "61-90"),
    (date(2026, 8, 25), 91, "over_90"),
    (date(2020, 1, 1), 2519, "over_90"),
])
def test_days_overdue_and_bucket(due, days, bucket):
    assert days_overdue(due, TODAY) == days
    assert bucket_for(days) == bucket


@pytest.mark.parametrize("key", [b.key for b in BUCKETS])
def test_due_date_bounds_agree_with_bucket_for(key):
    bucket = next(b for b in BUCKETS if b.key == key)
    earliest, latest = due_date_bounds(bucket, TODAY)
    for due in (earliest, latest):
        if due is not None:
            assert bucket_for(days_overdue(due, TODAY)) == key


@pytest.mark.parametrize(("receivables", "sales", "days", "expected"), [
    (100_000, 300_000, 90, 30.0),
    (0, 300_000, 90, 0.0),
    (450_000, 150_000, 30, 90.0),
    (100, 0, 90, None),
])
def test_dso(receivables, sales, days, expected):
    assert dso(receivables, sales, days) == expected


@pytest.mark.parametrize(("args", "message"), [
    ((1, 1, 0), "period_days"), ((-1, 1, 30), "negative")])
def test_dso_refuses_bad_input(args, message):
    with pytest.raises(ValueError, match=message):
        dso(*args)


@pytest.mark.parametrize(("ctx", "score"), [
    (CallContext(amount_cents=100, days_overdue=0, risk=0), 0),
    (CallContext(amount_cents=10_000_000, days_overdue=90, risk=5, promise_broken=True), 100),
    (CallContext(amount_cents=100_000_000, days_overdue=400, risk=5), 80),
    (CallContext(amount_cents=100_000, days_overdue=0, risk=0), 21),  # 1 000 EUR
    (CallContext(amount_cents=10_000, days_overdue=45, risk=1), 30),  # 100 EUR
])
def test_call_priority_scores(ctx, score):
    assert call_priority(ctx).score == score


@pytest.mark.parametrize(("higher", "lower"), [
    (CallContext(500_000, 20, 1, promise_broken=True), CallContext(500_000, 20, 1)),
    (CallContext(500_000, 20, 4), CallContext(500_000, 20, 1)),
    (CallContext(500_000, 60, 1), CallContext(500_000, 20, 1)),
    (CallContext(5_000_000, 20, 1), CallContext(50_000, 20, 1)),
])
def test_call_priority_orders(higher, lower):
    assert call_priority(higher).score > call_priority(lower).score


@pytest.mark.parametrize("ctx", [CallContext(-1, 0), CallContext(1, -1), CallContext(1, 1, 6)])
def test_call_priority_refuses_bad_input(ctx):
    with pytest.raises(ValueError):
        call_priority(ctx)
