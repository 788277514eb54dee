"""A customer as an agent sees them on a call, and as a manager sees them: the
statement, the timeline of all its invoices, and the do-not-contact mark."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Engine, or_
from sqlmodel import Session, col, select

from api.deps import (
    AgentUser,
    EngineDep,
    ManagerUser,
    SessionDep,
)
from api.errors import ApiError, responses
from api.money import Money, money
from api.timeline import customer_timeline
from ledger.models import AuditEvent, Customer, Invoice
from ledger.reports import (
    aged_balance,
    customer_statement,
    outstanding_invoices,
    past_calls,
    recent_messages,
)
from rules.aging import days_overdue

router = APIRouter(prefix="/customers", tags=["customers"])

CustomerId = Annotated[int, Path(ge=1, le=2**31 - 1, description="Customer id")]


class OpenInvoice(BaseModel):
    id: int
    number: str
    due_date: date
    days_overdue: int
    amount: Money
    balance: Money
    status: str
    stage: str


class MessageOut(BaseModel):
    at: datetime
    invoice_id: int
    step: str
    channel: str
    recipient: str | None
    subject: str | None
    status: str
    error: str | None


class CallOut(BaseModel):
    task_id: int
    invoice_id: int
    completed_at: datetime | None
    completed_by: str | None
    outcome: str | None
    notes: str | None
    promise_date: date | None


class CustomerOut(BaseModel):
    id: int
    ref: str
    name: str
    segment: str
    email: str | None
    phone: str | None
    language: str
    risk: int
    do_not_contact: bool = False


class CallContextOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "customer": {"id": 3, "ref": "C-ACME", "name": "Acme SARL", "segment": "b2b",
                     "email": "ap@acme.example", "phone": "+33612345678", "language": "fr",
                     "risk": 2},
        "balance": {"amount": "4500.00", "currency": "EUR"},
        "credit_limit": {"amount": "10000.00", "currency": "EUR"},
        "credit_limit_used_percent": 45.0, "open_invoices": [], "last_messages": [],
        "previous_calls": []}]})

    customer: CustomerOut
    balance: Money
    credit_limit: Money | None
    credit_limit_used_percent: float | None
    open_invoices: list[OpenInvoice]
    last_messages: list[MessageOut]
    previous_calls: list[CallOut]


def load_customer(session: Session, customer_id: int) -> Customer:
    customer = session.get(Customer, customer_id)
    if customer is None:
        raise ApiError(404, f"customer {customer_id} not found")
    return customer


def _currency(session: Session, customer_id: int) -> str:
    invoices = outstanding_invoices(session, customer_id)
    return invoices[0].currency if invoices else "EUR"


@router.get("/{customer_id}/context", response_model=CallContextOut,
            responses=responses(401, 403, 404))
def call_context(customer_id: CustomerId, session: SessionDep, _: AgentUser) -> CallContextOut:
    """Everything an agent needs on the phone: open invoices, balance, credit limit
    used, the last messages sent and their delivery status, previous call outcomes."""
    customer = load_customer(session, customer_id)
    today = datetime.now(UTC).date()
    invoices = outstanding_invoices(session, customer_id)
    currency = invoices[0].currency if invoices else "EUR"
    statement = customer_statement(session, customer_id, today)
    limit = customer.credit_limit_cents
    return CallContextOut(
        customer=CustomerOut.model_validate(customer, from_attributes=True),
        balance=money(statement.outstanding_cents, currency),
        credit_limit=money(limit, currency) if limit is not None else None,
        credit_limit_used_percent=round(100 * statement.outstanding_cents / limit, 1)
        if limit else None,
        open_invoices=[OpenInvoice(id=i.id or 0, number=i.number, due_date=i.due_date,
                                   days_overdue=days_overdue(i.due_date, today),
                                   amount=money(i.amount_cents, i.currency),
                                   balance=money(i.balance_cents, i.currency), status=i.status,
                                   stage=i.stage) for i in invoices],
        last_messages=[MessageOut(at=m.sent_at or m.created_at, invoice_id=m.invoice_id,
                                  step=m.step_key, channel=m.channel, recipient=m.recipient,
                                  subject=m.subject, status=m.status, error=m.error)
                       for m in recent_messages(session, customer_id)],
        previous_calls=[CallOut(task_id=t.id or 0, invoice_id=t.invoice_id,
                                completed_at=t.completed_at, completed_by=t.completed_by,
                                outcome=t.outcome, notes=t.notes, promise_date=t.promise_date)
                        for t in past_calls(session, customer_id)],
    )


class AgedBucketOut(BaseModel):
    bucket: str
    count: int
    balance: Money


class StatementOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "customer": {"id": 3, "ref": "C-ACME", "name": "Acme SARL", "segment": "b2b",
                     "email": "ap@acme.example", "phone": None, "language": "fr", "risk": 2},
        "outstanding": {"amount": "4500.00", "currency": "EUR"},
        "overdue": {"amount": "3000.00", "currency": "EUR"},
        "unapplied_cash": {"amount": "0.00", "currency": "EUR"},
        "credit_limit": None, "open_invoices": 2, "aged_balance": []}]})

    customer: CustomerOut
    outstanding: Money
    overdue: Money
    unapplied_cash: Money
    credit_limit: Money | None
    open_invoices: int
    aged_balance: list[AgedBucketOut]


@router.get("/{customer_id}/statement", response_model=StatementOut,
            responses=responses(401, 403, 404))
def statement(customer_id: CustomerId, session: SessionDep, _: ManagerUser) -> StatementOut:
    """Outstanding (encours), overdue, unapplied cash, credit limit and aged balance."""
    customer = load_customer(session, customer_id)
    today = datetime.now(UTC).date()
    s = customer_statement(session, customer_id, today)
    currency = _currency(session, customer_id)
    return StatementOut(
        customer=CustomerOut.model_validate(customer, from_attributes=True),
        outstanding=money(s.outstanding_cents, currency),
        overdue=money(s.overdue_cents, currency),
        unapplied_cash=money(s.unapplied_cents, currency),
        credit_limit=money(customer.credit_limit_cents, currency)
        if customer.credit_limit_cents is not None else None,
        open_invoices=s.open_invoices,
        aged_balance=[AgedBucketOut(bucket=a.bucket, count=a.count,
                                    balance=money(a.balance_cents, a.currency))
                      for a in aged_balance(session, today, customer_id)],
    )


class CustomerPatch(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"do_not_contact": True, "reason": "customer's lawyer asked us to stop"}]})

    do_not_contact: bool
    reason: Annotated[str, Field(max_length=500)] = ""


@router.patch("/{customer_id}", response_model=CustomerOut, responses=responses(401, 403, 404))
def update_customer(customer_id: CustomerId, body: CustomerPatch, session: SessionDep,
                    user: ManagerUser) -> CustomerOut:
    """Mark (or clear) do not contact. While marked, no email, SMS or letter goes
    out for any of the customer's invoices (a message already queued is skipped
    when its window is sent, and its letters are held from the print queue), and
    its call task is on hold: out of the worklist, not claimable. Dunning goes on
    otherwise (payments, escalation) and the customer stays in every report."""
    customer = load_customer(session, customer_id)
    if customer.do_not_contact != body.do_not_contact:
        customer.do_not_contact = body.do_not_contact
        session.add(customer)
        session.add(AuditEvent(
            customer_id=customer_id, actor=user.name, detail={"reason": body.reason},
            kind="do_not_contact_set" if body.do_not_contact else "do_not_contact_cleared"))
        session.commit()
        session.refresh(customer)
    return CustomerOut.model_validate(customer, from_attributes=True)


class CustomerTimelineEntry(BaseModel):
    at: datetime
    kind: str
    summary: str
    actor: str | None = None
    invoice_ids: list[int] = Field(description="The invoices concerned (several for a "
                                               "grouped message; none for a customer event)")
    invoice_numbers: list[str]
    detail: dict[str, Any] = {}


class CustomerTimelineOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "customer_id": 3, "truncated": False, "entries": [
            {"at": "2026-11-01T08:10:00Z", "kind": "message_sent",
             "summary": "message sent: email for reminder to ap@acme.example (one message for "
                        "invoices F-2026-0042, F-2026-0044)",
             "actor": "workflow", "invoice_ids": [42, 44],
             "invoice_numbers": ["F-2026-0042", "F-2026-0044"],
             "detail": {"batch_id": 9, "provider_id": "outbox-9"}},
            {"at": "2026-11-02T10:00:00Z", "kind": "customer_paused", "summary":
             "customer paused: customer on holiday", "actor": "maria", "invoice_ids": [],
             "invoice_numbers": [], "detail": {"reason": "customer on holiday"}}]}]})

    customer_id: int
    truncated: bool = Field(description="Older entries were left out (raise `limit`)")
    entries: list[CustomerTimelineEntry]


def _customer_events(engine: Engine, customer_id: int,
                     limit: int) -> tuple[list[AuditEvent], dict[int, str], bool]:
    with Session(engine) as session:
        load_customer(session, customer_id)
        numbers = {i.id or 0: i.number for i in session.exec(
            select(Invoice).where(Invoice.customer_id == customer_id))}
        rows = list(session.exec(select(AuditEvent).where(
            or_(col(AuditEvent.customer_id) == customer_id,
                col(AuditEvent.invoice_id).in_(list(numbers))))
            .order_by(col(AuditEvent.id).desc()).limit(limit + 1)))
    return rows[:limit], numbers, len(rows) > limit


@router.get("/{customer_id}/timeline", response_model=CustomerTimelineOut,
            responses=responses(401, 403, 404))
async def customer_timeline_route(
    customer_id: CustomerId, _: ManagerUser, engine: EngineDep,
    limit: Annotated[int, Query(ge=1, le=5000, description="Most recent entries kept")] = 1000,
) -> CustomerTimelineOut:
    """The audit trail of all the customer's invoices and of the customer itself
    (customer-level pause, plan, do not contact, transfers recorded by hand), in
    time order. A grouped message is one entry naming every invoice it covered;
    each invoice's own timeline (`/invoices/{id}/timeline`) still records it."""
    events, numbers, truncated = await asyncio.to_thread(_customer_events, engine,
                                                         customer_id, limit)
    return CustomerTimelineOut(customer_id=customer_id, truncated=truncated, entries=[
        CustomerTimelineEntry(at=c.entry.at, kind=c.entry.kind, summary=c.entry.summary,
                              actor=c.entry.actor, invoice_ids=c.invoice_ids,
                              invoice_numbers=[numbers.get(i, "") for i in c.invoice_ids],
                              detail=c.entry.detail)
        for c in customer_timeline(events, numbers)])
