"""The dunning workflow's payload types: its input, the state it carries through
continue-as-new, its messages and its results.

They live outside `workflows.dunning` so the workflow imports them passed through
the sandbox: one class object per type for the whole worker, instead of a fresh
copy (and a fresh pydantic schema in the data converter's cache) for every
cached workflow. Nothing here may import sqlmodel or do I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any

from activities.payloads import Instalment
from rules.calendar import StepClock
from rules.policy import DunningPolicy


class InvoiceStatus(StrEnum):
    OPEN = "open"
    PAID = "paid"
    IN_PAYMENT_PLAN = "in_payment_plan"
    CANCELLED = "cancelled"
    ESCALATED = "escalated"


class CallOutcome(StrEnum):
    NO_ANSWER = "no_answer"
    WRONG_NUMBER = "wrong_number"
    PROMISE_TO_PAY = "promise_to_pay"
    DISPUTE = "dispute"
    PAYMENT_PLAN = "payment_plan"
    PAID_CLAIMED = "paid_claimed"


# --- messages ---------------------------------------------------------------


@dataclass
class PaymentReceived:
    """Signal: money arrived for this invoice. `payment_id` is the ledger's id, so
    the same payment delivered twice counts once."""

    payment_id: str = ""
    amount_cents: int = 0
    currency: str = "EUR"
    received_at: datetime | None = None


@dataclass
class CompleteCallTask:
    task_id: int = 0
    outcome: CallOutcome = CallOutcome.NO_ANSWER
    notes: str | None = None
    promise_date: date | None = None
    dispute_reason: str | None = None
    instalments: list[Instalment] = field(default_factory=list)
    agent: str | None = None


@dataclass
class CallTaskCompleted:
    task_id: int = 0
    outcome: str = ""
    stage: str = ""


@dataclass
class PaymentPlanAgreed:
    instalments: list[Instalment] = field(default_factory=list)
    agreed_by: str | None = None


@dataclass
class StewardAction:
    """Pause, resume, dispute or cancel, with who asked and why."""

    actor: str = "system"
    reason: str = ""


@dataclass
class Acknowledged:
    stage: str = ""
    status: str = ""


@dataclass
class DunningStatus:
    invoice_id: int = 0
    status: str = InvoiceStatus.OPEN
    stage: str = ""
    balance_cents: int = 0
    currency: str = "EUR"
    unapplied_cents: int = 0
    next_action: str | None = None
    next_action_at: datetime | None = None
    paused: bool = False
    disputed: bool = False
    promise_until: date | None = None
    open_tasks: list[int] = field(default_factory=list)
    steps_done: list[str] = field(default_factory=list)


# --- input and state --------------------------------------------------------


@dataclass
class PlannedStepState:
    key: str = ""
    day: date = date(1970, 1, 1)


@dataclass
class DunningState:
    """Everything the workflow knows; carried whole through continue-as-new."""

    clock: StepClock = field(default_factory=StepClock)
    plan: list[PlannedStepState] = field(default_factory=list)
    next_step: int = 0
    # Days added to every remaining step after a pause, dispute or promise.
    shift_days: int = 0
    status: str = InvoiceStatus.OPEN
    stage: str = "scheduled"
    balance_cents: int = 0
    unapplied_cents: int = 0
    payment_ids: list[str] = field(default_factory=list)
    paused: bool = False
    disputed: bool = False
    promise_until: date | None = None
    open_tasks: dict[int, str] = field(default_factory=dict)
    completed_tasks: list[int] = field(default_factory=list)
    email_unusable: bool = False
    sms_unusable: bool = False
    steps_done: list[str] = field(default_factory=list)
    audit_seq: int = 0

    # The state's own rules are pure methods here rather than in the workflow
    # module, which the sandbox re-imports for every cached workflow: here their
    # code exists once per worker (benchmark 4).

    def current_step_key(self) -> str:
        return self.plan[self.next_step].key

    def next_step_at(self) -> datetime:
        return self.clock.at(self.plan[self.next_step].day + timedelta(days=self.shift_days))

    def resume_plan(self, today: date) -> None:
        """After a pause, dispute or promise, move the remaining steps so the next
        one happens today at the earliest and the policy's spacing is kept."""
        if self.next_step >= len(self.plan):
            return
        next_day = self.plan[self.next_step].day + timedelta(days=self.shift_days)
        if next_day < today:
            self.shift_days += (today - next_day).days

    def next_action(self) -> tuple[str | None, datetime | None]:
        if self.status != InvoiceStatus.OPEN:
            return None, None
        if self.paused:
            return "paused", None
        if self.disputed:
            return "dispute", None
        if self.promise_until is not None:
            return "promise_to_pay_due", self.clock.at(self.promise_until)
        if self.next_step < len(self.plan):
            return self.current_step_key(), self.next_step_at()
        return None, None

    def apply_payment(self, payment: PaymentReceived, currency: str
                      ) -> list[tuple[str, dict[str, Any]]] | None:
        """Count a payment once; None when it was already counted (or is not a
        positive amount), else the audit events it makes."""
        if payment.payment_id in self.payment_ids or payment.amount_cents <= 0:
            return None
        if payment.currency != currency:
            return [("payment_rejected", {"payment_id": payment.payment_id,
                                          "reason": f"currency {payment.currency}"})]
        self.payment_ids.append(payment.payment_id)
        if self.status != InvoiceStatus.OPEN:
            self.unapplied_cents += payment.amount_cents
            return [("payment_unapplied", {"payment_id": payment.payment_id,
                                           "amount_cents": payment.amount_cents,
                                           "reason": f"invoice {self.status}"})]
        applied = min(payment.amount_cents, self.balance_cents)
        self.balance_cents -= applied
        over = payment.amount_cents - applied
        self.unapplied_cents += over
        events: list[tuple[str, dict[str, Any]]] = [
            ("payment_applied", {"payment_id": payment.payment_id, "applied_cents": applied,
                                 "unapplied_cents": over, "balance_cents": self.balance_cents})]
        if self.balance_cents == 0:
            self.status = InvoiceStatus.PAID
            self.stage = "paid"
            self.open_tasks.clear()
            events.append(("dunning_closed", {"status": "paid", "balance_cents": 0}))
        return events

    def require_open(self) -> None:
        if self.status != InvoiceStatus.OPEN:
            raise ValueError(f"invoice is {self.status}, dunning has ended")

    def check_instalments(self, instalments: list[Instalment]) -> None:
        if not instalments:
            raise ValueError("a payment plan needs at least one instalment")
        if any(i.amount_cents <= 0 for i in instalments):
            raise ValueError("every instalment must be a positive amount")
        total = sum(i.amount_cents for i in instalments)
        if total != self.balance_cents:
            raise ValueError(
                f"instalments total {total} cents, balance is {self.balance_cents} cents")

    def view(self, invoice_id: int, currency: str) -> DunningStatus:
        next_action, next_at = self.next_action()
        return DunningStatus(
            invoice_id=invoice_id, status=self.status, stage=self.stage,
            balance_cents=self.balance_cents, currency=currency,
            unapplied_cents=self.unapplied_cents, next_action=next_action,
            next_action_at=next_at, paused=self.paused, disputed=self.disputed,
            promise_until=self.promise_until, open_tasks=sorted(self.open_tasks),
            steps_done=list(self.steps_done))


@dataclass
class DunningInput:
    invoice_id: int = 0
    invoice_number: str = ""
    customer_ref: str = ""
    currency: str = "EUR"
    balance_cents: int = 0
    due_date: date = date(1970, 1, 1)
    policy: DunningPolicy = field(default_factory=DunningPolicy)
    day_seconds: int = 86400
    timezone: str = "Europe/Paris"
    send_hour: int = 9
    # How long a queued message waits for the customer's other invoices of the
    # same window before the one grouped message goes out.
    gather_seconds: int = 0
    # The customer's country's public holidays, snapshotted like the policy.
    holidays: list[date] = field(default_factory=list)
    # Set only by continue-as-new.
    state: DunningState | None = None


@dataclass
class DunningResult:
    status: str = ""
    stage: str = ""
    balance_cents: int = 0
    unapplied_cents: int = 0
    steps_done: list[str] = field(default_factory=list)
