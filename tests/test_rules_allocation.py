from __future__ import annotations

from datetime import date

import pytest

from rules.allocation import OpenInvoice, allocate

A = OpenInvoice(1, "F-001", date(2026, 1, 10), 10000)
B = OpenInvoice(2, "F-002", date(2026, 2, 10), 25000)
C = OpenInvoice(3, "F-003", date(2026, 3, 10), 40000)


@pytest.mark.parametrize(
    ("amount", "refs", "parts", "left", "rule"),
    [
        (25000, ["f-002"], [(2, 25000)], 0, "references"),
        (30000, ["F-003", "F-001"], [(1, 10000), (3, 20000)], 0, "references"),
        (30000, ["F-002"], [(2, 25000)], 5000, "references"),
        (50000, [], [(1, 10000), (3, 40000)], 0, "exact_set"),
        (65000, [], [(2, 25000), (3, 40000)], 0, "exact_set"),
        (75000, [], [(1, 10000), (2, 25000), (3, 40000)], 0, "exact_set"),
        (30000, [], [(1, 10000), (2, 20000)], 0, "oldest_first"),
        (90000, [], [(1, 10000), (2, 25000), (3, 40000)], 15000, "oldest_first"),
        (30000, ["UNKNOWN"], [(1, 10000), (2, 20000)], 0, "oldest_first"),
    ],
)
def test_allocate(amount, refs, parts, left, rule) -> None:
    result = allocate(amount, [C, A, B], refs)
    assert (result.parts, result.unapplied_cents, result.rule) == (parts, left, rule)


def test_nothing_open_is_all_unapplied() -> None:
    assert allocate(500, []).unapplied_cents == 500
    with pytest.raises(ValueError):
        allocate(0, [A])
