"""A customer's payment plan over several invoices.

The customer agrees one schedule of instalments for everything they owe; each
invoice's workflow needs a plan of its own that adds up to its balance. The money
of the schedule is poured into the invoices oldest due first, instalment by
instalment in date order (the same order as `rules.allocation`'s fallback), so the
oldest debt is cleared first and an instalment may be shared by two invoices.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from rules.allocation import OpenInvoice


@dataclass(frozen=True)
class PlannedInstalment:
    due_date: date
    amount_cents: int


def split_plan(instalments: list[PlannedInstalment],
               invoices: list[OpenInvoice]) -> dict[int, list[PlannedInstalment]]:
    """Per invoice id, its instalments; each invoice's total is its balance.

    Raises ValueError when the schedule is empty, has a non-positive instalment,
    or does not add up to the invoices' total balance (nothing is left unplanned
    and nothing is planned twice)."""
    if not instalments:
        raise ValueError("a payment plan needs at least one instalment")
    if any(i.amount_cents <= 0 for i in instalments):
        raise ValueError("every instalment must be a positive amount")
    owed = sorted((i for i in invoices if i.balance_cents > 0),
                  key=lambda i: (i.due_date, i.invoice_id))
    if not owed:
        raise ValueError("no open invoice with a balance to plan")
    total, balance = sum(i.amount_cents for i in instalments), sum(i.balance_cents for i in owed)
    if total != balance:
        raise ValueError(f"instalments total {total} cents, the invoices' balance is "
                         f"{balance} cents")
    plans: dict[int, list[PlannedInstalment]] = {i.invoice_id: [] for i in owed}
    schedule = sorted(instalments, key=lambda i: i.due_date)
    k, left_in_instalment = 0, schedule[0].amount_cents
    for inv in owed:
        left_on_invoice = inv.balance_cents
        while left_on_invoice:
            part = min(left_on_invoice, left_in_instalment)
            plan = plans[inv.invoice_id]
            due = schedule[k].due_date
            if plan and plan[-1].due_date == due:  # two instalments on one day: one line
                plan[-1] = PlannedInstalment(due, plan[-1].amount_cents + part)
            else:
                plan.append(PlannedInstalment(due, part))
            left_on_invoice -= part
            left_in_instalment -= part
            if left_in_instalment == 0 and k + 1 < len(schedule):
                k += 1
                left_in_instalment = schedule[k].amount_cents
    return plans
