"""Which call comes first on an agent's worklist.

A score out of 100 from four things an experienced collector weighs: the amount
at stake (log scale: 10 000 EUR is not 100 times as urgent as 100 EUR), how late
the invoice is, the customer's risk rating, and whether a promise to pay was
broken (a broken promise is the strongest signal of all).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

AMOUNT_WEIGHT = 35  # reached at AMOUNT_CAP_CENTS
AMOUNT_CAP_CENTS = 10_000_000  # 100 000.00
OVERDUE_WEIGHT = 25  # reached at OVERDUE_CAP_DAYS
OVERDUE_CAP_DAYS = 90
RISK_WEIGHT = 20  # risk 5
MAX_RISK = 5
BROKEN_PROMISE_POINTS = 20


@dataclass(frozen=True)
class CallContext:
    amount_cents: int
    days_overdue: int
    risk: int = 1
    promise_broken: bool = False


@dataclass(frozen=True)
class CallPriority:
    score: int
    reasons: list[str] = field(default_factory=list)


def amount_points(amount_cents: int) -> float:
    if amount_cents <= 100:  # 1.00 or less: nothing at stake
        return 0.0
    scale = math.log10(min(amount_cents, AMOUNT_CAP_CENTS) / 100) / math.log10(
        AMOUNT_CAP_CENTS / 100)
    return AMOUNT_WEIGHT * scale


def call_priority(ctx: CallContext) -> CallPriority:
    if ctx.amount_cents < 0 or ctx.days_overdue < 0:
        raise ValueError("amount and days overdue must not be negative")
    if not 0 <= ctx.risk <= MAX_RISK:
        raise ValueError(f"risk must be between 0 and {MAX_RISK}")
    amount = amount_points(ctx.amount_cents)
    late = OVERDUE_WEIGHT * min(ctx.days_overdue, OVERDUE_CAP_DAYS) / OVERDUE_CAP_DAYS
    risk = RISK_WEIGHT * ctx.risk / MAX_RISK
    promise = BROKEN_PROMISE_POINTS if ctx.promise_broken else 0
    reasons = [f"amount {amount:.0f}", f"overdue {late:.0f}", f"risk {risk:.0f}"]
    if promise:
        reasons.append(f"promise broken {promise}")
    return CallPriority(round(amount + late + risk + promise), reasons)
