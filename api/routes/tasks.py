"""Call tasks, for collections agents: the prioritised worklist, claim, complete."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Engine, update
from sqlmodel import Session, col

from activities.payloads import Instalment
from api.deps import AgentUser, EngineDep, SessionDep, SettingsDep, TemporalClientDep
from api.errors import ApiError, responses
from api.money import Money, PositiveAmount, money, to_cents
from api.steering import run_update
from ledger.models import CallTask, Invoice, TaskStatus
from ledger.reports import WorklistFilter, WorklistRow, worklist
from rules.aging import days_overdue
from rules.priority import CallContext, call_priority
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


def _task_out(row: WorklistRow, today: date) -> TaskOut:
    t, inv, cust = row.task, row.invoice, row.customer
    late = days_overdue(inv.due_date, today)
    prio = call_priority(CallContext(max(inv.balance_cents, 0), late, cust.risk,
                                     row.promise_broken))
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
    customer risk, broken promise: `rules/priority.py`)."""
    f = WorklistFilter(
        statuses=[TaskStatus.OPEN, TaskStatus.CLAIMED] if status == "any" else [status],
        assigned_to=user.name if mine else None, unassigned=unassigned,
        customer_ref=customer_ref,
        min_balance_cents=to_cents(min_balance) if min_balance is not None else None)
    today = datetime.now(UTC).date()
    ranked = sorted((_task_out(r, today) for r in worklist(session, f)),
                    key=lambda t: (-t.priority, t.created_at, t.id))
    start = (page - 1) * size
    return TaskPage(items=ranked[start:start + size], total=len(ranked), page=page, size=size)


def _load_task(session: Session, task_id: int) -> CallTask:
    task = session.get(CallTask, task_id)
    if task is None:
        raise ApiError(404, f"call task {task_id} not found")
    return task


@router.post("/{task_id}/claim", response_model=TaskOut, responses=responses(401, 403, 404, 409))
def claim_task(task_id: TaskId, session: SessionDep, user: AgentUser) -> TaskOut:
    """Take an open task; only one agent can hold it. Claiming your own task again
    is harmless."""
    _load_task(session, task_id)
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
    rows = worklist(session, WorklistFilter(statuses=[TaskStatus.CLAIMED],
                                            assigned_to=user.name))
    row = next(r for r in rows if r.task.id == task_id)
    return _task_out(row, datetime.now(UTC).date())


class InstalmentIn(BaseModel):
    due_date: date
    amount: PositiveAmount


class CompleteTaskIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"outcome": "promise_to_pay", "promise_date": "2026-12-05",
         "notes": "Spoke to the AP clerk, transfer scheduled"},
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


class TaskCompleted(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"task_id": 7, "outcome": "promise_to_pay", "stage": "promise_to_pay"}]})
    task_id: int
    outcome: str
    stage: str


def _task_for_completion(engine: Engine, task_id: int) -> CallTask:
    with Session(engine, expire_on_commit=False) as session:
        task = _load_task(session, task_id)
        if session.get(Invoice, task.invoice_id) is None:
            raise ApiError(404, f"invoice {task.invoice_id} not found")
        return task


@router.post("/{task_id}/complete", response_model=TaskCompleted,
             responses=responses(401, 403, 404, 409, 503))
async def complete_task(task_id: TaskId, body: CompleteTaskIn, user: AgentUser,
                        engine: EngineDep, client: TemporalClientDep,
                        settings: SettingsDep) -> TaskCompleted:
    """Record the call's outcome through the invoice workflow's `complete_call_task`
    update: its validator rejects a stale, double or inconsistent completion (409
    with the reason) before anything is written. Agents complete only tasks
    assigned to them or unassigned."""
    task = await asyncio.to_thread(_task_for_completion, engine, task_id)
    if not user.is_manager and task.assigned_to not in (None, user.name):
        raise ApiError(403, f"call task {task_id} is assigned to {task.assigned_to}")
    try:
        instalments = [Instalment(i.due_date, to_cents(i.amount)) for i in body.instalments]
    except ValueError as err:
        raise ApiError(422, str(err)) from None
    cmd = CompleteCallTask(task_id=task_id, outcome=body.outcome, notes=body.notes,
                           promise_date=body.promise_date, dispute_reason=body.dispute_reason,
                           instalments=instalments, agent=user.name)
    done = await run_update(client, engine, task.invoice_id, DunningWorkflow.complete_call_task,
                            cmd, actor=user.name, rpc_timeout=settings.temporal_rpc_timeout_seconds)
    return TaskCompleted(task_id=done.task_id, outcome=done.outcome, stage=done.stage)
