"""The ledger: customers, invoices, payments, messages, call tasks and the audit trail.

Money is stored in integer cents (exact in SQLite and PostgreSQL, and summable in
SQL); the API speaks Decimal with a currency. Read/write schemas sit next to
their table, as in the FastAPI full-stack template.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index, LargeBinary, UniqueConstraint, text
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


class InvoiceStatus(StrEnum):
    OPEN = "open"
    PAID = "paid"
    IN_PAYMENT_PLAN = "in_payment_plan"
    DISPUTED = "disputed"
    CANCELLED = "cancelled"
    ESCALATED = "escalated"


class MessageStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    DELIVERED = "delivered"
    FAILED = "failed"
    SKIPPED = "skipped"


class TaskStatus(StrEnum):
    OPEN = "open"
    CLAIMED = "claimed"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


# --- customers -------------------------------------------------------------


class CustomerBase(SQLModel):
    ref: str = Field(index=True, unique=True, max_length=64)
    name: str = Field(max_length=200)
    segment: str = Field(default="b2b", max_length=8)
    email: str | None = Field(default=None, max_length=254)
    phone: str | None = Field(default=None, max_length=32)
    language: str = Field(default="fr", max_length=8)
    country: str = Field(default="FR", max_length=2)
    timezone: str = Field(default="Europe/Paris", max_length=64)
    address: str | None = Field(default=None, max_length=500)
    credit_limit_cents: int | None = Field(default=None, sa_column=Column(BigInteger))
    risk: int = Field(default=1, ge=0, le=5)
    policy_code: str | None = Field(default=None, max_length=64)
    do_not_contact: bool = False


class Customer(CustomerBase, table=True):
    id: int | None = Field(default=None, primary_key=True)
    email_invalid: bool = False
    sms_opt_out: bool = False
    created_at: datetime = Field(default_factory=utcnow)


# --- invoices --------------------------------------------------------------


class Invoice(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("number", name="uq_invoice_number"),)

    id: int | None = Field(default=None, primary_key=True)
    number: str = Field(max_length=64)
    customer_id: int = Field(foreign_key="customer.id", index=True)
    invoice_date: date
    due_date: date = Field(index=True)
    currency: str = Field(default="EUR", max_length=3)
    amount_cents: int = Field(sa_column=Column(BigInteger, nullable=False))
    balance_cents: int = Field(sa_column=Column(BigInteger, nullable=False))
    status: str = Field(default=InvoiceStatus.OPEN, max_length=20, index=True)
    stage: str = Field(default="new", max_length=32, index=True)
    policy_code: str | None = Field(default=None, max_length=64)
    next_action: str | None = Field(default=None, max_length=64)
    next_action_at: datetime | None = None
    closed_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)

    @property
    def workflow_id(self) -> str:
        return f"invoice-{self.id}"


# --- payments --------------------------------------------------------------


class Payment(SQLModel, table=True):
    """Money received. `external_id` is the gateway's id, so a retried webhook
    records the payment once. `invoice_id` None with `unapplied_cents` > 0 is cash
    waiting for a human to match it."""

    __table_args__ = (UniqueConstraint("source", "external_id", name="uq_payment_external"),)

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(max_length=32)
    external_id: str = Field(max_length=128)
    invoice_id: int | None = Field(default=None, foreign_key="invoice.id", index=True)
    customer_id: int | None = Field(default=None, foreign_key="customer.id", index=True)
    amount_cents: int = Field(sa_column=Column(BigInteger, nullable=False))
    applied_cents: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    unapplied_cents: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    currency: str = Field(default="EUR", max_length=3)
    received_at: datetime = Field(default_factory=utcnow)
    # Set once the invoice workflow has the payment (the reconciler retries the rest).
    signalled_at: datetime | None = None


# --- messages (the outbox) -------------------------------------------------


class OutboxMessage(SQLModel, table=True):
    """One message per (invoice, step, channel), written before any provider is
    called: the unique key is what makes a retried send a no-op."""

    __table_args__ = (
        UniqueConstraint("invoice_id", "step_key", "channel", name="uq_outbox_invoice_step"),
    )

    id: int | None = Field(default=None, primary_key=True)
    invoice_id: int = Field(foreign_key="invoice.id", index=True)
    customer_id: int = Field(foreign_key="customer.id", index=True)
    step_key: str = Field(max_length=64)
    channel: str = Field(max_length=16)
    template: str = Field(max_length=64)
    language: str = Field(default="fr", max_length=8)
    recipient: str | None = Field(default=None, max_length=254)
    subject: str | None = Field(default=None, max_length=300)
    body: str = ""
    status: str = Field(default=MessageStatus.PENDING, max_length=16, index=True)
    provider: str | None = Field(default=None, max_length=32)
    provider_id: str | None = Field(default=None, max_length=128, index=True)
    error: str | None = None
    attempts: int = 0
    created_at: datetime = Field(default_factory=utcnow)
    sent_at: datetime | None = None
    # Grouping: requests of one customer on one channel in one sending window
    # (`window`, by default the business day) go out as one MessageBatch.
    window: str | None = Field(default=None, max_length=32)
    tone: int = 0
    batch_id: int | None = Field(default=None, foreign_key="messagebatch.id", index=True)
    # A formal notice's terms, from the request (the invoice's policy), so the
    # grouped message and the customer's combined letter use them, not a default.
    deadline_days: int = 0
    recovery_indemnity: bool = True
    as_of: date | None = None


class MessageBatch(SQLModel, table=True):
    """The message a customer actually receives: one per (customer, channel,
    window, seq). Its members are claimed once (outboxmessage.batch_id is set
    only while NULL), so an invoice is never sent both alone and in a group."""

    __table_args__ = (
        UniqueConstraint("customer_id", "channel", "window", "seq", name="uq_batch_window"),
    )

    id: int | None = Field(default=None, primary_key=True)
    customer_id: int = Field(foreign_key="customer.id", index=True)
    channel: str = Field(max_length=16)
    window: str = Field(max_length=32)
    seq: int = 1
    template: str = Field(default="", max_length=64)
    tone: int = 0
    recipient: str | None = Field(default=None, max_length=254)
    subject: str | None = Field(default=None, max_length=300)
    body: str = ""
    invoice_ids: list[int] = Field(default_factory=list, sa_column=Column(JSON))
    status: str = Field(default="sending", max_length=16, index=True)
    provider: str | None = Field(default=None, max_length=32)
    provider_id: str | None = Field(default=None, max_length=128, index=True)
    error: str | None = None
    attempts: int = 0
    # Whoever holds the lease calls the provider; a crashed sender's lease expires.
    lease_until: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)
    sent_at: datetime | None = None


class LetterPostalStatus(StrEnum):
    QUEUED = "queued"  # waiting to be printed and posted as lettre recommandée avec AR
    POSTED = "posted"
    # An invoice's own letter replaced, before posting, by its customer's combined one.
    SUPERSEDED = "superseded"


class Letter(SQLModel, table=True):
    """The mise en demeure as sent: the print-ready PDF, stored once per (invoice,
    step), linked to the outbox row of its registered-post send and attached to the
    email of the same step.

    A customer's combined letter (several invoices reaching the step in one sending
    window) has no `invoice_id`: it is stored once per registered-post batch
    (`batch_id`) and covers the invoices linked in LetterInvoice."""

    __table_args__ = (UniqueConstraint("invoice_id", "step_key", name="uq_letter_invoice_step"),
                      UniqueConstraint("batch_id", name="uq_letter_batch"))

    id: int | None = Field(default=None, primary_key=True)
    invoice_id: int | None = Field(default=None, foreign_key="invoice.id", index=True)
    customer_id: int = Field(foreign_key="customer.id", index=True)
    step_key: str = Field(max_length=64)
    outbox_id: int | None = Field(default=None, foreign_key="outboxmessage.id", index=True)
    batch_id: int | None = Field(default=None, foreign_key="messagebatch.id")
    language: str = Field(default="fr", max_length=8)
    filename: str = Field(max_length=200)
    pdf: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    sha256: str = Field(max_length=64)
    letter_date: date
    deadline: date
    principal_cents: int = Field(sa_column=Column(BigInteger, nullable=False))
    interest_cents: int = Field(sa_column=Column(BigInteger, nullable=False))
    indemnity_cents: int = Field(sa_column=Column(BigInteger, nullable=False))
    postal_status: str = Field(default=LetterPostalStatus.QUEUED, max_length=16, index=True)
    created_at: datetime = Field(default_factory=utcnow)


class LetterInvoice(SQLModel, table=True):
    """The invoices a combined letter covers, with each one's part of the claim.
    An invoice's step is covered by at most one combined letter."""

    __table_args__ = (UniqueConstraint("invoice_id", "step_key", name="uq_letterinvoice"),)

    id: int | None = Field(default=None, primary_key=True)
    letter_id: int = Field(foreign_key="letter.id", index=True)
    invoice_id: int = Field(foreign_key="invoice.id", index=True)
    step_key: str = Field(max_length=64)
    principal_cents: int = Field(sa_column=Column(BigInteger, nullable=False))
    interest_cents: int = Field(sa_column=Column(BigInteger, nullable=False))
    indemnity_cents: int = Field(sa_column=Column(BigInteger, nullable=False))


# --- call tasks ------------------------------------------------------------


class CallTask(SQLModel, table=True):
    """One call for a customer, covering every invoice linked in CallTaskInvoice;
    `invoice_id` is the invoice that opened it. At most one open task per customer."""

    __table_args__ = (
        UniqueConstraint("invoice_id", "step_key", name="uq_calltask_invoice_step"),
        Index("uq_calltask_open_per_customer", "customer_id", unique=True,
              sqlite_where=text("status IN ('open', 'claimed')"),
              postgresql_where=text("status IN ('open', 'claimed')")),
    )

    id: int | None = Field(default=None, primary_key=True)
    invoice_id: int = Field(foreign_key="invoice.id", index=True)
    customer_id: int = Field(foreign_key="customer.id", index=True)
    step_key: str = Field(max_length=64)
    status: str = Field(default=TaskStatus.OPEN, max_length=16, index=True)
    reason: str = Field(default="", max_length=200)
    assigned_to: str | None = Field(default=None, max_length=64, index=True)
    outcome: str | None = Field(default=None, max_length=32)
    notes: str | None = None
    promise_date: date | None = None
    created_at: datetime = Field(default_factory=utcnow)
    completed_at: datetime | None = None
    completed_by: str | None = Field(default=None, max_length=64)


class CallTaskInvoice(SQLModel, table=True):
    """The invoices one call covers: an agent calls a customer once for all of them."""

    __table_args__ = (UniqueConstraint("invoice_id", "step_key", name="uq_calltaskinvoice"),)

    id: int | None = Field(default=None, primary_key=True)
    task_id: int = Field(foreign_key="calltask.id", index=True)
    invoice_id: int = Field(foreign_key="invoice.id", index=True)
    step_key: str = Field(max_length=64)
    outcome: str | None = Field(default=None, max_length=32)
    completed_at: datetime | None = None


# --- payment plans ---------------------------------------------------------


class PaymentPlan(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    invoice_id: int = Field(foreign_key="invoice.id", index=True)
    agreed_by: str | None = Field(default=None, max_length=64)
    created_at: datetime = Field(default_factory=utcnow)


class Instalment(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    plan_id: int = Field(foreign_key="paymentplan.id", index=True)
    due_date: date
    amount_cents: int = Field(sa_column=Column(BigInteger, nullable=False))


# --- audit trail -----------------------------------------------------------


class AuditEvent(SQLModel, table=True):
    """Every step taken, message sent, payment, task and decision, with its time."""

    __table_args__ = (UniqueConstraint("dedup_key", name="uq_audit_dedup"),)

    id: int | None = Field(default=None, primary_key=True)
    invoice_id: int | None = Field(default=None, foreign_key="invoice.id", index=True)
    customer_id: int | None = Field(default=None, foreign_key="customer.id", index=True)
    kind: str = Field(max_length=48, index=True)
    actor: str = Field(default="workflow", max_length=64)
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    # Activities retry: an event derived from workflow data is written once.
    dedup_key: str | None = Field(default=None, max_length=200)
    at: datetime = Field(default_factory=utcnow, index=True)


# --- API tokens --------------------------------------------------------------


class Role(StrEnum):
    """What a bearer token may do: agents work call tasks, managers steer
    invoices and read reports, admins do both (and everything to come)."""

    AGENT = "agent"
    MANAGER = "manager"
    ADMIN = "admin"


class ApiToken(SQLModel, table=True):
    """A bearer token for the API. Only the SHA-256 of the token is stored: the
    token itself is shown once, when `relance token create` makes it."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=64, index=True, unique=True)
    role: str = Field(max_length=16)
    token_hash: str = Field(max_length=64, index=True, unique=True)
    created_at: datetime = Field(default_factory=utcnow)
    revoked_at: datetime | None = None
