from __future__ import annotations

from datetime import date

import pytest

from rules.allocation import OpenInvoice
from rules.payment_plan import PlannedInstalment as P
from rules.payment_plan import split_plan

A = OpenInvoice(1, "F-001", date(2026, 1, 10), 10000)
B = OpenInvoice(2, "F-002", date(2026, 2, 10), 25000)
C = OpenInvoice(3, "F-003", date(2026, 3, 10), 40000)
D1, D2, D3 = date(2026, 12, 15), date(2027, 1, 15), date(2027, 2, 15)


@pytest.mark.parametrize(
    ("schedule", "invoices", "plans"),
    [
        # one invoice: the schedule as given
        ([P(D1, 5000), P(D2, 5000)], [A], {1: [P(D1, 5000), P(D2, 5000)]}),
        # instalments that match the invoices one to one, oldest due first
        ([P(D1, 10000), P(D2, 25000), P(D3, 40000)], [C, A, B],
         {1: [P(D1, 10000)], 2: [P(D2, 25000)], 3: [P(D3, 40000)]}),
        # three equal instalments of 250: shared across invoices at the edges
        ([P(D1, 25000), P(D2, 25000), P(D3, 25000)], [A, B, C],
         {1: [P(D1, 10000)], 2: [P(D1, 15000), P(D2, 10000)],
          3: [P(D2, 15000), P(D3, 25000)]}),
        # the schedule given out of order is read in date order
        ([P(D2, 20000), P(D1, 15000)], [A, B],
         {1: [P(D1, 10000)], 2: [P(D1, 5000), P(D2, 20000)]}),
        # one instalment pays everything
        ([P(D1, 75000)], [A, B, C], {1: [P(D1, 10000)], 2: [P(D1, 25000)], 3: [P(D1, 40000)]}),
        # two instalments on the same day become one line of an invoice's plan
        ([P(D1, 4000), P(D1, 6000)], [A], {1: [P(D1, 10000)]}),
        # an invoice with nothing left to pay gets no plan
        ([P(D1, 10000)], [A, OpenInvoice(9, "F-009", date(2025, 1, 1), 0)], {1: [P(D1, 10000)]}),
    ],
)
def test_split_plan(schedule, invoices, plans) -> None:
    result = split_plan(schedule, invoices)
    assert result == plans
    for inv in invoices:
        if inv.balance_cents:
            assert sum(p.amount_cents for p in result[inv.invoice_id]) == inv.balance_cents


@pytest.mark.parametrize(
    ("schedule", "invoices", "message"),
    [
        ([], [A], "at least one instalment"),
        ([P(D1, 0), P(D2, 10000)], [A], "positive"),
        ([P(D1, -500), P(D2, 10500)], [A], "positive"),
        ([P(D1, 9999)], [A], "instalments total 9999 cents, the invoices' balance is 10000"),
        ([P(D1, 40000)], [A, B], "balance is 35000"),
        ([P(D1, 100)], [], "no open invoice"),
    ],
)
def test_split_plan_refuses(schedule, invoices, message) -> None:
    with pytest.raises(ValueError, match=message):
        split_plan(schedule, invoices)
