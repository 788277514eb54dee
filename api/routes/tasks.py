"""Call tasks, for collections agents: the prioritised worklist, claim, complete."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Engine, update
from sqlmodel import Session, col, select

from activities.payloads import Instalment
from api.deps import AgentUser, EngineDep, SessionDep, SettingsDep, TemporalClientDep
from api.errors import ApiError, responses
from api.money import Money, PositiveAmount, money, to_cents
from api.plans import customer_plan
from api.steering import InvoiceResult, report_fan_out
from dunning_client.customer import covered_invoices, update_each
from ledger.models import CallTask, CallTaskInvoice, Customer, Invoice, TaskStatus
from ledger.reports import WorklistFilter, WorklistKey, WorklistRow, worklist_keys, worklist_rows
from rules.aging import days_overdue
from rules.priority import CallContext, CallPriority, call_priority
from workflows.dunning import CallOutcome, CompleteCallTask, DunningWorkflow

router = APIRouter(prefix="/tasks", tags=["call tasks"])

TaskId = Annotated[int, Path(ge=1, le=2**31 - 1, description="Call task id")]


class TaskOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": 7, "invoice_id": 42, "invoice_number": "F-2026-0042", "customer_id": 3,
        "customer_ref": "C-ACME", "customer_name": "Acme SARL", "phone": "+33612345678",
        "step_key": "call", "reason": "policy step", "status": "open", "assigned_to": None,
        "balance": {"amount": "4500.00", "currency": "EUR"}, "days_overdue": 14,
        "priority": 47, "priority_reasons": ["amount 26", "overdue 4", "risk 4"],
        "promise_broken": False, "created_at": "2026-11-24T09:00:00Z"}]})

    id: int
    invoice_id: int
    invoice_number: str
    customer_id: int
    customer_ref: str
    customer_name: str
    phone: str | None
    step_key: str
    reason: str
    status: str
    assigned_to: str | None
    balance: Money
    days_overdue: int
    priority: int
    priority_reasons: list[str]
    promise_broken: bool
    created_at: datetime


class TaskPage(BaseModel):
    items: list[TaskOut]
    total: int
    page: int
    size: int


def _priority(balance_cents: int, due_date: date, risk: int, promise_broken: bool,
              today: date) -> CallPriority:
    return call_priority(CallContext(max(balance_cents, 0), days_overdue(due_date, today), risk,
                                     promise_broken))


def _rank(key: WorklistKey, today: date) -> tuple[int, datetime, int]:
    """Highest priority first, then oldest, then lowest id (a stable order to page by)."""
    prio = _priority(key.balance_cents, key.due_date, key.risk, key.promise_broken, today)
    return -prio.score, key.created_at, key.task_id


def _task_out(row: WorklistRow, today: date) -> TaskOut:
    t, inv, cust = row.task, row.invoice, row.customer
    late = days_overdue(inv.due_date, today)
    prio = _priority(inv.balance_cents, inv.due_date, cust.risk, row.promise_broken, today)
    return TaskOut(id=t.id or 0, invoice_id=inv.id or 0, invoice_number=inv.number,
                   customer_id=cust.id or 0, customer_ref=cust.ref, customer_name=cust.name,
                   phone=cust.phone, step_key=t.step_key, reason=t.reason, status=t.status,
                   assigned_to=t.assigned_to, balance=money(inv.balance_cents, inv.currency),
                   days_overdue=late, priority=prio.score, priority_reasons=prio.reasons,
                   promise_broken=row.promise_broken, created_at=t.created_at)


@router.get("", response_model=TaskPage, responses=responses(401, 403))
def list_tasks(
    session: SessionDep, user: AgentUser,
    status: Literal["open", "claimed", "any"] = "any",
    mine: Annotated[bool, Query(description="Only tasks claimed by me")] = False,
    unassigned: Annotated[bool, Query(description="Only tasks nobody claimed")] = False,
    customer_ref: Annotated[str | None, Query(max_length=64)] = None,
    min_balance: Annotated[Decimal | None, Query(ge=0, max_digits=14, decimal_places=2)] = None,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
    size: Annotated[int, Query(ge=1, le=100)] = 20,
) -> TaskPage:
    """Open call tasks, highest priority first (amount at stake, days overdue,
    customer risk, broken promise: `rules/priority.py`). Tasks of customers marked
    do not contact are left out until the mark is cleared."""
    f = WorklistFilter(
        statuses=[TaskStatus.OPEN, TaskStatus.CLAIMED] if status == "any" else [status],
        assigned_to=user.name if mine else None, unassigned=unassigned,
        customer_ref=customer_ref,
        min_balance_cents=to_cents(min_balance) if min_balance is not None else None)
    today = datetime.now(UTC).date()
    # Rank narrow rows (one per task) with the rule; load whole rows for the page only.
    ranked = sorted(worklist_keys(session, f), key=lambda k: _rank(k, today))
    start = (page - 1) * size
    shown = worklist_rows(session, [k.task_id for k in ranked[start:start + size]])
    return TaskPage(items=[_task_out(r, today) for r in shown], total=len(ranked), page=page,
                    size=size)


def _load_task(session: Session, task_id: int) -> CallTask:
    task = session.get(CallTask, task_id)
    if task is None:
        raise ApiError(404, f"call task {task_id} not found")
    return task


@router.post("/{task_id}/claim", response_model=TaskOut, responses=responses(401, 403, 404, 409))
def claim_task(task_id: TaskId, session: SessionDep, user: AgentUser) -> TaskOut:
    """Take an open task; only one agent can hold it. Claiming your own task again
    is harmless. A do-not-contact customer's task is on hold (409)."""
    _refuse_if_do_not_contact(session, _load_task(session, task_id))
    claimed = session.execute(
        update(CallTask)
        .where(col(CallTask.id) == task_id,
               col(CallTask.status).in_([TaskStatus.OPEN, TaskStatus.CLAIMED]),
               col(CallTask.assigned_to).is_(None) | (col(CallTask.assigned_to) == user.name))
        .values(status=TaskStatus.CLAIMED, assigned_to=user.name))
    session.commit()
    task = _load_task(session, task_id)
    session.refresh(task)
    if claimed.rowcount == 0:  # type: ignore[attr-defined]
        holder = f"claimed by {task.assigned_to}" if task.status == TaskStatus.CLAIMED \
            else task.status
        raise ApiError(409, f"call task {task_id} is {holder}", "task_unavailable")
    [row] = worklist_rows(session, [task_id])
    return _task_out(row, datetime.now(UTC).date())


class InstalmentIn(BaseModel):
    due_date: date
    amount: PositiveAmount


class InvoiceOutcomeIn(BaseModel):
    """One covered invoice's own outcome; a field left out is the call's."""

    model_config = ConfigDict(extra="forbid")

    invoice_id: Annotated[int, Field(ge=1, le=2**31 - 1)]
    outcome: CallOutcome | None = None
    notes: Annotated[str | None, Field(max_length=4000)] = None
    promise_date: date | None = None
    dispute_reason: Annotated[str | None, Field(max_length=500)] = None
    instalments: Annotated[list[InstalmentIn], Field(max_length=36)] = []


class CompleteTaskIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"outcome": "promise_to_pay", "promise_date": "2026-12-05",
         "notes": "Spoke to the AP clerk, transfer scheduled"},
        {"outcome": "promise_to_pay", "promise_date": "2026-12-05",
         "invoices": [{"invoice_id": 44, "outcome": "dispute",
                       "dispute_reason": "goods damaged on delivery"}]},
        {"outcome": "payment_plan", "instalments": [
            {"due_date": "2026-12-15", "amount": "2250.00"},
            {"due_date": "2027-01-15", "amount": "2250.00"}]},
        {"outcome": "dispute", "dispute_reason": "goods damaged on delivery"},
        {"outcome": "no_answer"}]})

    outcome: CallOutcome
    notes: Annotated[str | None, Field(max_length=4000)] = None
    promise_date: date | None = None
    dispute_reason: Annotated[str | None, Field(max_length=500)] = None
    instalments: Annotated[list[InstalmentIn], Field(max_length=36)] = []
    invoices: Annotated[list[InvoiceOutcomeIn] | None, Field(
        max_length=200, description="Per covered invoice, an outcome different from the "
        "call's (a promise covering only some invoices, a dispute on one); every covered "
        "invoice not listed gets the call's outcome")] = None


class TaskCompleted(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"task_id": 7, "outcome": "promise_to_pay", "stage": "promise_to_pay",
         "task_status": "completed", "invoices": [
             {"invoice_id": 42, "invoice_number": "F-2026-0042", "done": True,
              "stage": "promise_to_pay", "outcome": "promise_to_pay"},
             {"invoice_id": 44, "invoice_number": "F-2026-0044", "done": True,
              "stage": "disputed", "outcome": "dispute"}]}]})
    task_id: int
    outcome: str
    stage: str = Field(description="Stage of the invoice that opened the task (or of the "
                                   "first invoice done)")
    task_status: str
    invoices: list[InvoiceResult]


def _task_for_completion(engine: Engine, task_id: int) -> CallTask:
    with Session(engine, expire_on_commit=False) as session:
        task = _load_task(session, task_id)
        if session.get(Invoice, task.invoice_id) is None:
            raise ApiError(404, f"invoice {task.invoice_id} not found")
        _refuse_if_do_not_contact(session, task)
        return task


def _refuse_if_do_not_contact(session: Session, task: CallTask) -> None:
    customer = session.get(Customer, task.customer_id)
    if customer is not None and customer.do_not_contact:
        raise ApiError(409, f"customer {customer.ref} is marked do not contact: its call "
                            f"task {task.id} is on hold until the mark is cleared",
                       "do_not_contact")


def _check_overrides(engine: Engine, task: CallTask, covered: list[int],
                     overrides: list[InvoiceOutcomeIn]) -> None:
    """Every listed invoice must be one the task still covers; said before any update."""
    if not overrides:
        raise ApiError(422, "invoices, when given, must list at least one invoice",
                       "invalid_invoices")
    ids = [o.invoice_id for o in overrides]
    if len(set(ids)) != len(ids):
        raise ApiError(422, "an invoice is listed twice", "invalid_invoices")
    with Session(engine) as session:
        for invoice_id in ids:
            if invoice_id in covered:
                continue
            invoice = session.get(Invoice, invoice_id)
            if invoice is None:
                raise ApiError(422, f"invoice {invoice_id} does not exist", "invalid_invoices")
            if invoice.customer_id != task.customer_id:
                raise ApiError(422, f"invoice {invoice_id} belongs to another customer than "
                                    f"call task {task.id}", "invalid_invoices")
            link = session.exec(select(CallTaskInvoice).where(
                CallTaskInvoice.task_id == task.id,
                CallTaskInvoice.invoice_id == invoice_id)).first()
            if link is None:
                raise ApiError(422, f"invoice {invoice_id} is not covered by call task {task.id}",
                               "invalid_invoices")
            raise ApiError(409, f"call task {task.id} is already completed for invoice "
                                f"{invoice_id} ({link.outcome})", "conflict")


def _cents(instalments: list[InstalmentIn]) -> list[Instalment]:
    try:
        return [Instalment(i.due_date, to_cents(i.amount)) for i in instalments]
    except ValueError as err:
        raise ApiError(422, str(err)) from None


def _commands(engine: Engine, task: CallTask, covered: list[int], body: CompleteTaskIn,
              agent: str) -> tuple[CompleteCallTask, dict[int, CompleteCallTask]]:
    """The call's command, and each invoice's own where it differs. A payment plan
    agreed for several invoices at once is the customer's schedule, split over
    them oldest due first (`rules.payment_plan`)."""
    call = CompleteCallTask(task_id=task.id or 0, outcome=body.outcome, notes=body.notes,
                            promise_date=body.promise_date, dispute_reason=body.dispute_reason,
                            instalments=_cents(body.instalments), agent=agent)
    per_invoice = {o.invoice_id: replace(
        call, outcome=o.outcome or call.outcome, notes=o.notes or call.notes,
        promise_date=o.promise_date or call.promise_date,
        dispute_reason=o.dispute_reason or call.dispute_reason,
        instalments=_cents(o.instalments) if o.instalments else call.instalments)
        for o in body.invoices or []}
    own_plan = {o.invoice_id for o in body.invoices or [] if o.instalments}
    shared_plan = [i for i in covered if i not in own_plan
                   and per_invoice.get(i, call).outcome == CallOutcome.PAYMENT_PLAN]
    if len(shared_plan) > 1 and call.instalments:
        plans = customer_plan(engine, shared_plan, call.instalments)
        for invoice_id, instalments in plans.items():
            per_invoice[invoice_id] = replace(per_invoice.get(invoice_id, call),
                                              instalments=instalments)
    return call, per_invoice


@router.post("/{task_id}/complete", response_model=TaskCompleted,
             responses=responses(401, 403, 404, 409, 422, 503))
async def complete_task(task_id: TaskId, body: CompleteTaskIn, user: AgentUser,
                        engine: EngineDep, client: TemporalClientDep,
                        settings: SettingsDep) -> TaskCompleted:
    """Record the call's outcome on every invoice the task covers, each through its
    workflow's `complete_call_task` update, whose validator rejects a stale, double
    or inconsistent completion before anything is written. `invoices` gives some
    invoices an outcome of their own. Each invoice is reported (done, or refused
    with the workflow's reason); if none took it, 409 with the reasons. Agents
    complete only tasks assigned to them or unassigned."""
    task = await asyncio.to_thread(_task_for_completion, engine, task_id)
    if not user.is_manager and task.assigned_to not in (None, user.name):
        raise ApiError(403, f"call task {task_id} is assigned to {task.assigned_to}")
    covered = await asyncio.to_thread(covered_invoices, engine, task_id)
    if body.invoices is not None:
        await asyncio.to_thread(_check_overrides, engine, task, covered, body.invoices)
    # A task with nothing left to cover still asks its invoice's workflow, whose
    # validator gives the reason (already completed...).
    call, per_invoice = await asyncio.to_thread(_commands, engine, task, covered or
                                                [task.invoice_id], body, user.name)
    result = await update_each(client, [
        (i, DunningWorkflow.complete_call_task, per_invoice.get(i, call))
        for i in covered or [task.invoice_id]], settings.temporal_rpc_timeout_seconds)
    report = await report_fan_out(engine, result, "complete_call_task", actor=user.name,
                                  outcomes={i: per_invoice.get(i, call).outcome
                                            for i in result.done})
    stage = result.stages.get(task.invoice_id) or result.stages[result.done[0]]
    status = await asyncio.to_thread(_task_status, engine, task_id)
    return TaskCompleted(task_id=task_id, outcome=body.outcome, stage=stage, task_status=status,
                         invoices=report)


def _task_status(engine: Engine, task_id: int) -> str:
    with Session(engine) as session:
        return _load_task(session, task_id).status
