"""Splitting one transfer across a customer's open invoices.

Order of evidence: invoice references in the remittance, then an exact match of
the amount with a set of open invoices, then oldest due first. What is left over
is unapplied cash for a human; nothing is ever dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from itertools import combinations

# Exact-set matching looks at subsets of at most this many invoices (2^n grows fast).
EXACT_MATCH_MAX_INVOICES = 16


@dataclass(frozen=True)
class OpenInvoice:
    invoice_id: int
    number: str
    due_date: date
    balance_cents: int


@dataclass(frozen=True)
class Allocation:
    parts: list[tuple[int, int]]  # (invoice id, cents)
    unapplied_cents: int
    rule: str  # references | exact_set | oldest_first | none


def allocate(amount_cents: int, invoices: list[OpenInvoice],
             references: list[str] | None = None) -> Allocation:
    if amount_cents <= 0:
        raise ValueError("a payment must be a positive amount")
    open_ = sorted((i for i in invoices if i.balance_cents > 0),
                   key=lambda i: (i.due_date, i.invoice_id))
    refs = {r.strip().upper() for r in references or [] if r.strip()}
    named = [i for i in open_ if i.number.upper() in refs]
    if named:
        return _in_order(amount_cents, named, "references")
    exact = _exact_set(amount_cents, open_)
    if exact:
        return Allocation([(i.invoice_id, i.balance_cents) for i in exact], 0, "exact_set")
    if not open_:
        return Allocation([], amount_cents, "none")
    return _in_order(amount_cents, open_, "oldest_first")


def _in_order(amount: int, invoices: list[OpenInvoice], rule: str) -> Allocation:
    parts = []
    for inv in invoices:
        if amount == 0:
            break
        paid = min(amount, inv.balance_cents)
        parts.append((inv.invoice_id, paid))
        amount -= paid
    return Allocation(parts, amount, rule)


def _exact_set(amount: int, invoices: list[OpenInvoice]) -> list[OpenInvoice]:
    """The smallest, then oldest, set of invoices whose balances add up to `amount`."""
    if len(invoices) > EXACT_MATCH_MAX_INVOICES:
        return []
    for size in range(1, len(invoices) + 1):
        for combo in combinations(invoices, size):
            if sum(i.balance_cents for i in combo) == amount:
                return list(combo)
    return []
