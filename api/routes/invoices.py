"""Invoices, for managers: list with totals, timeline, and steering the workflow
(pause, resume, dispute, cancel), each audited with who did it."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Engine
from sqlmodel import Session, col, select
from temporalio.service import RPCError, RPCStatusCode

from api.deps import EngineDep, ManagerUser, SessionDep, SettingsDep, TemporalClientDep
from api.errors import ApiError, responses
from api.money import Currency, Money, money, to_cents
from api.steering import run_update
from api.timeline import Entry, HistoryReader, audit_entry, merge
from dunning_client.start import workflow_id
from ledger.models import AuditEvent, Customer, Invoice
from ledger.reports import InvoiceFilter, list_invoices
from rules.aging import days_overdue
from workflows.dunning import DunningWorkflow, StewardAction

router = APIRouter(prefix="/invoices", tags=["invoices"])

InvoiceId = Annotated[int, Path(ge=1, le=2**31 - 1, description="Invoice id")]
Cents = Annotated[Decimal | None, Query(ge=0, max_digits=14, decimal_places=2)]


class InvoiceOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": 42, "number": "F-2026-0042", "customer_id": 3, "customer_ref": "C-ACME",
        "customer_name": "Acme SARL", "invoice_date": "2026-10-01", "due_date": "2026-10-31",
        "days_overdue": 24, "amount": {"amount": "4500.00", "currency": "EUR"},
        "balance": {"amount": "4500.00", "currency": "EUR"}, "status": "open",
        "stage": "sms_reminder", "next_action": "call",
        "next_action_at": "2026-11-14T08:00:00Z", "workflow_id": "invoice-42"}]})

    id: int
    number: str
    customer_id: int
    customer_ref: str
    customer_name: str
    invoice_date: date
    due_date: date
    days_overdue: int
    amount: Money
    balance: Money
    status: str
    stage: str
    next_action: str | None
    next_action_at: datetime | None
    workflow_id: str


class InvoiceTotals(BaseModel):
    count: int
    amount_cents: int = Field(description="Sum over all matching invoices, in cents")
    balance_cents: int


class InvoicePageOut(BaseModel):
    items: list[InvoiceOut]
    totals: InvoiceTotals
    page: int
    size: int


def _out(inv: Invoice, cust: Customer, today: date) -> InvoiceOut:
    return InvoiceOut(id=inv.id or 0, number=inv.number, customer_id=cust.id or 0,
                      customer_ref=cust.ref, customer_name=cust.name,
                      invoice_date=inv.invoice_date, due_date=inv.due_date,
                      days_overdue=days_overdue(inv.due_date, today),
                      amount=money(inv.amount_cents, inv.currency),
                      balance=money(inv.balance_cents, inv.currency), status=inv.status,
                      stage=inv.stage, next_action=inv.next_action,
                      next_action_at=inv.next_action_at, workflow_id=inv.workflow_id)


@router.get("", response_model=InvoicePageOut, responses=responses(401, 403))
def list_all(
    session: SessionDep, _: ManagerUser,
    stage: Annotated[str | None, Query(max_length=32, examples=["call"])] = None,
    status: Literal["open", "paid", "in_payment_plan", "disputed", "cancelled",
                    "escalated"] | None = None,
    customer_ref: Annotated[str | None, Query(max_length=64)] = None,
    currency: Annotated[Currency | None, Query()] = None,
    min_days_overdue: Annotated[int | None, Query(ge=0, le=36500)] = None,
    max_days_overdue: Annotated[int | None, Query(ge=0, le=36500)] = None,
    min_balance: Cents = None,
    max_balance: Cents = None,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
    size: Annotated[int, Query(ge=1, le=200)] = 50,
) -> InvoicePageOut:
    """Invoices by stage, status, customer, days overdue and balance, most overdue
    first, with the totals of everything that matches (not just the page)."""
    today = datetime.now(UTC).date()
    f = InvoiceFilter(stage=stage, status=status, customer_ref=customer_ref, currency=currency,
                      min_days_overdue=min_days_overdue, max_days_overdue=max_days_overdue,
                      min_balance_cents=to_cents(min_balance) if min_balance is not None else None,
                      max_balance_cents=to_cents(max_balance) if max_balance is not None else None)
    result = list_invoices(session, f, today, offset=(page - 1) * size, limit=size)
    return InvoicePageOut(items=[_out(i, c, today) for i, c in result.rows],
                          totals=InvoiceTotals(**vars(result.totals)), page=page, size=size)


def _invoice(session: Session, invoice_id: int) -> tuple[Invoice, Customer]:
    invoice = session.get(Invoice, invoice_id)
    if invoice is None:
        raise ApiError(404, f"invoice {invoice_id} not found")
    customer = session.get(Customer, invoice.customer_id)
    assert customer is not None
    return invoice, customer


@router.get("/{invoice_id}", response_model=InvoiceOut, responses=responses(401, 403, 404))
def get_one(invoice_id: InvoiceId, session: SessionDep, _: ManagerUser) -> InvoiceOut:
    invoice, customer = _invoice(session, invoice_id)
    return _out(invoice, customer, datetime.now(UTC).date())


class TimelineEntry(BaseModel):
    at: datetime
    source: Literal["temporal", "ledger"]
    kind: str
    summary: str
    actor: str | None = None
    detail: dict[str, Any] = {}


class TimelineOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "invoice_id": 42, "workflow_id": "invoice-42",
        "temporal_ui_url": "http://127.0.0.1:8233/namespaces/default/workflows/invoice-42",
        "history_available": True, "entries": [
            {"at": "2026-11-01T08:00:00Z", "source": "temporal", "kind": "message_scheduled",
             "summary": "send email for step reminder (template reminder)", "detail": {}},
            {"at": "2026-11-01T08:00:01Z", "source": "ledger", "kind": "message_sent",
             "summary": "message sent: email for reminder to ap@acme.example",
             "actor": "workflow", "detail": {"text": "Bonjour, ..."}}]}]})

    invoice_id: int
    workflow_id: str
    temporal_ui_url: str
    history_available: bool
    entries: list[TimelineEntry]


def _audit_entries(engine: Engine, invoice_id: int) -> list[Entry]:
    with Session(engine) as session:
        _invoice(session, invoice_id)
        rows = session.exec(select(AuditEvent).where(AuditEvent.invoice_id == invoice_id)
                            .order_by(col(AuditEvent.id))).all()
        return [audit_entry(e) for e in rows]


@router.get("/{invoice_id}/timeline", response_model=TimelineOut,
            responses=responses(401, 403, 404))
async def timeline(invoice_id: InvoiceId, _: ManagerUser, engine: EngineDep,
                   client: TemporalClientDep, settings: SettingsDep) -> TimelineOut:
    """The workflow history as readable events (timers and what they wait for,
    messages, signals, updates accepted or rejected, stage changes) merged with
    the ledger's audit trail, and a link to the Temporal Web UI. If Temporal is
    unreachable the ledger part is still returned (`history_available` false)."""
    audit = await asyncio.to_thread(_audit_entries, engine, invoice_id)
    wid = workflow_id(invoice_id)
    reader = HistoryReader(client.data_converter.payload_converter)
    history: list[Entry] = []
    available = True
    try:
        handle = client.get_workflow_handle(wid)
        async for event in handle.fetch_history_events():
            entry = reader.read(event)
            if entry is not None:
                history.append(entry)
    except RPCError as err:
        if err.status != RPCStatusCode.NOT_FOUND:
            available = False
        else:
            available = False
    except (RuntimeError, TimeoutError):
        available = False
    ui = f"{settings.temporal_ui_url.rstrip('/')}/namespaces/{settings.temporal_namespace}" \
         f"/workflows/{wid}"
    return TimelineOut(invoice_id=invoice_id, workflow_id=wid, temporal_ui_url=ui,
                       history_available=available,
                       entries=[TimelineEntry(**vars(e)) for e in merge(history, audit)])


class StewardIn(BaseModel):
    model_config = ConfigDict(extra="forbid",
                              json_schema_extra={"examples": [{"reason": "customer on holiday"}]})
    reason: Annotated[str, Field(max_length=500)] = ""


class CancelIn(BaseModel):
    model_config = ConfigDict(extra="forbid",
                              json_schema_extra={"examples": [{"reason": "credit_note"}]})
    reason: Literal["credit_note", "write_off"]


class SteerResult(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"invoice_id": 42, "action": "pause", "actor": "maria", "stage": "paused",
         "status": "open"}]})
    invoice_id: int
    action: str
    actor: str
    stage: str
    status: str


async def _steer(invoice_id: int, action: str, update: Any, reason: str, user: Any,
                 engine: Engine, client: Any, settings: Any) -> SteerResult:
    def exists() -> None:
        with Session(engine) as session:
            _invoice(session, invoice_id)

    await asyncio.to_thread(exists)
    ack = await run_update(client, engine, invoice_id, update,
                           StewardAction(actor=user.name, reason=reason), actor=user.name,
                           rpc_timeout=settings.temporal_rpc_timeout_seconds)
    return SteerResult(invoice_id=invoice_id, action=action, actor=user.name, stage=ack.stage,
                       status=ack.status)


STEER_ERRORS = responses(401, 403, 404, 409, 503)


@router.post("/{invoice_id}/pause", response_model=SteerResult, responses=STEER_ERRORS)
async def pause(invoice_id: InvoiceId, body: StewardIn, user: ManagerUser, engine: EngineDep,
                client: TemporalClientDep, settings: SettingsDep) -> SteerResult:
    """Hold dunning: no step is taken until resumed."""
    return await _steer(invoice_id, "pause", DunningWorkflow.pause, body.reason, user, engine,
                        client, settings)


@router.post("/{invoice_id}/resume", response_model=SteerResult, responses=STEER_ERRORS)
async def resume(invoice_id: InvoiceId, body: StewardIn, user: ManagerUser, engine: EngineDep,
                 client: TemporalClientDep, settings: SettingsDep) -> SteerResult:
    """Resume a paused invoice; overdue steps move to now, keeping the spacing."""
    return await _steer(invoice_id, "resume", DunningWorkflow.resume, body.reason, user, engine,
                        client, settings)


@router.post("/{invoice_id}/dispute", response_model=SteerResult, responses=STEER_ERRORS)
async def open_dispute(invoice_id: InvoiceId, body: StewardIn, user: ManagerUser,
                       engine: EngineDep, client: TemporalClientDep,
                       settings: SettingsDep) -> SteerResult:
    """Open a dispute (a reason is required): dunning holds until it is resolved."""
    return await _steer(invoice_id, "dispute", DunningWorkflow.open_dispute, body.reason, user,
                        engine, client, settings)


@router.post("/{invoice_id}/resolve-dispute", response_model=SteerResult,
             responses=STEER_ERRORS)
async def resolve_dispute(invoice_id: InvoiceId, body: StewardIn, user: ManagerUser,
                          engine: EngineDep, client: TemporalClientDep,
                          settings: SettingsDep) -> SteerResult:
    return await _steer(invoice_id, "resolve_dispute", DunningWorkflow.resolve_dispute,
                        body.reason, user, engine, client, settings)


@router.post("/{invoice_id}/cancel", response_model=SteerResult, responses=STEER_ERRORS)
async def cancel(invoice_id: InvoiceId, body: CancelIn, user: ManagerUser, engine: EngineDep,
                 client: TemporalClientDep, settings: SettingsDep) -> SteerResult:
    """Stop dunning for good: a credit note was issued or the debt is written off."""
    return await _steer(invoice_id, "cancel", DunningWorkflow.cancel, body.reason, user, engine,
                        client, settings)
