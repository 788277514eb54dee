"""Arguments and results of activities: plain dataclasses, no ORM, one per call
so fields can be added without breaking running workflows."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any


@dataclass
class AuditInput:
    invoice_id: int = 0
    kind: str = ""
    detail: dict[str, Any] = field(default_factory=dict)
    actor: str = "workflow"
    # Derived from workflow data so a retried activity writes the event once.
    dedup_key: str = ""


@dataclass
class InvoiceProgress:
    """The workflow's view of an invoice, mirrored into the ledger."""

    invoice_id: int = 0
    status: str = "open"
    stage: str = ""
    balance_cents: int = 0
    next_action: str | None = None
    next_action_at: datetime | None = None
    closed: bool = False
    # Audit events gathered since the last mirror, written in the same transaction.
    events: list[AuditInput] = field(default_factory=list)


@dataclass
class SendMessageInput:
    invoice_id: int = 0
    step_key: str = ""
    channel: str = "email"
    template: str = ""
    balance_cents: int = 0
    # Mise en demeure: deadline printed on the letter.
    deadline_days: int = 0
    recovery_indemnity: bool = True
    # The workflow's day for this step (letter date, interest computed up to it);
    # None: the worker's clock.
    as_of: date | None = None
    # Grouping: the sending window (the policy day) and the step's firmness.
    window: str = ""
    tone: int = 0


@dataclass
class DispatchMessageInput:
    outbox_id: int = 0


@dataclass
class WithdrawMessageInput:
    outbox_id: int = 0
    reason: str = ""


@dataclass
class SendMessageResult:
    outbox_id: int = 0
    # queued | sent | failed | skipped
    status: str = "sent"
    provider_id: str | None = None
    reason: str | None = None
    # True when the recipient itself is unusable (bounce, invalid number, opt-out):
    # the workflow falls back to the next channel.
    recipient_unusable: bool = False


@dataclass
class CreateCallTaskInput:
    invoice_id: int = 0
    step_key: str = ""
    reason: str = ""


@dataclass
class CallTaskOutcomeInput:
    invoice_id: int = 0
    task_id: int = 0
    outcome: str = ""
    notes: str | None = None
    promise_date: date | None = None
    agent: str | None = None


@dataclass
class Instalment:
    due_date: date = date(1970, 1, 1)
    amount_cents: int = 0


@dataclass
class StorePaymentPlanInput:
    invoice_id: int = 0
    instalments: list[Instalment] = field(default_factory=list)
    agreed_by: str | None = None


@dataclass
class MarkRecipientInput:
    customer_invoice_id: int = 0
    # "phone_invalid" | "email_invalid" | "sms_opt_out"
    flag: str = ""
