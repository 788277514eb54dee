"""Which steps of a policy an invoice still goes through, and on which day."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from rules.policy import DunningPolicy, DunningStep


@dataclass(frozen=True)
class PlannedStep:
    step: DunningStep
    day: date


def plan_steps(policy: DunningPolicy, due_date: date, today: date) -> list[PlannedStep]:
    """The steps left for an invoice entering dunning on `today`.

    Before or on the due date every step is kept (a pre-reminder already late is
    sent at once). After it, pre-due steps are dropped, and if the invoice is later
    than the first overdue step, the remaining steps are shifted so that the first
    one happens today and the policy's spacing is kept.
    """
    steps = sorted(policy.steps, key=lambda s: s.offset_days)
    if today <= due_date:
        return [PlannedStep(s, due_date + timedelta(days=s.offset_days)) for s in steps]
    overdue = [s for s in steps if s.offset_days > 0]
    if not overdue:
        return []
    days_late = (today - due_date).days
    shift = max(0, days_late - overdue[0].offset_days)
    return [PlannedStep(s, due_date + timedelta(days=s.offset_days + shift)) for s in overdue]
