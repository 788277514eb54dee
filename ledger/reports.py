"""Read-side queries for the API: aggregates computed by the database (SQLite or
PostgreSQL), never by loading the ledger into Python. Days overdue become due-date
cut-offs computed in Python, so the SQL stays portable."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import case, exists, func, literal
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from ledger.models import (
    AuditEvent,
    CallTask,
    Customer,
    Invoice,
    InvoiceStatus,
    OutboxMessage,
    Payment,
    TaskStatus,
)
from rules.aging import BUCKETS, due_date_bounds

# Still owed by the customer (dunning may be over, the debt is not).
OUTSTANDING = [InvoiceStatus.OPEN, InvoiceStatus.DISPUTED, InvoiceStatus.IN_PAYMENT_PLAN,
               InvoiceStatus.ESCALATED]


@dataclass
class InvoiceFilter:
    stage: str | None = None
    status: str | None = None
    customer_ref: str | None = None
    min_days_overdue: int | None = None
    max_days_overdue: int | None = None
    min_balance_cents: int | None = None
    max_balance_cents: int | None = None
    currency: str | None = None


@dataclass
class Totals:
    count: int = 0
    amount_cents: int = 0
    balance_cents: int = 0


@dataclass
class InvoicePage:
    rows: list[tuple[Invoice, Customer]] = field(default_factory=list)
    totals: Totals = field(default_factory=Totals)


def _invoice_conditions(f: InvoiceFilter, today: date) -> list[Any]:
    cond: list[Any] = []
    if f.stage:
        cond.append(Invoice.stage == f.stage)
    if f.status:
        cond.append(Invoice.status == f.status)
    if f.customer_ref:
        cond.append(Customer.ref == f.customer_ref)
    if f.currency:
        cond.append(Invoice.currency == f.currency)
    if f.min_days_overdue is not None:
        cond.append(col(Invoice.due_date) <= today - timedelta(days=f.min_days_overdue))
    if f.max_days_overdue is not None:
        cond.append(col(Invoice.due_date) >= today - timedelta(days=f.max_days_overdue))
    if f.min_balance_cents is not None:
        cond.append(col(Invoice.balance_cents) >= f.min_balance_cents)
    if f.max_balance_cents is not None:
        cond.append(col(Invoice.balance_cents) <= f.max_balance_cents)
    return cond


def list_invoices(session: Session, f: InvoiceFilter, today: date, *, offset: int,
                  limit: int) -> InvoicePage:
    """One page of invoices, most overdue first, and the totals of all that match."""
    cond = _invoice_conditions(f, today)
    join = Customer.id == Invoice.customer_id
    rows = session.exec(
        select(Invoice, Customer).join(Customer, join).where(*cond)  # type: ignore[arg-type]
        .order_by(col(Invoice.due_date), col(Invoice.id)).offset(offset).limit(limit)
    ).all()
    count, amount, balance = session.exec(
        select(func.count(), func.coalesce(func.sum(Invoice.amount_cents), 0),
               func.coalesce(func.sum(Invoice.balance_cents), 0))
        .select_from(Invoice).join(Customer, join).where(*cond)  # type: ignore[arg-type]
    ).one()
    return InvoicePage(list(rows), Totals(int(count), int(amount), int(balance)))


@dataclass
class StageCount:
    stage: str
    status: str
    count: int
    balance_cents: int


def stage_counts(session: Session) -> list[StageCount]:
    rows = session.exec(
        select(Invoice.stage, Invoice.status, func.count(),
               func.coalesce(func.sum(Invoice.balance_cents), 0))
        .group_by(Invoice.stage, Invoice.status).order_by(Invoice.status, Invoice.stage)
    ).all()
    return [StageCount(s, st, int(n), int(b)) for s, st, n, b in rows]


@dataclass
class AgedAmount:
    bucket: str
    currency: str
    count: int
    balance_cents: int


def _bucket_case(today: date) -> Any:
    whens = []
    for bucket in BUCKETS:
        earliest, latest = due_date_bounds(bucket, today)
        conds = []
        if earliest is not None:
            conds.append(col(Invoice.due_date) >= earliest)
        if latest is not None:
            conds.append(col(Invoice.due_date) <= latest)
        whens.append((conds[0] if len(conds) == 1 else conds[0] & conds[1], bucket.key))
    return case(*whens, else_=literal("over_90"))


def aged_balance(session: Session, today: date, customer_id: int | None = None) -> list[AgedAmount]:
    """Outstanding balance by age bucket and currency; every bucket is listed."""
    bucket = _bucket_case(today).label("bucket")
    query = (select(bucket, Invoice.currency, func.count(), func.sum(Invoice.balance_cents))
             .where(col(Invoice.status).in_(OUTSTANDING), col(Invoice.balance_cents) > 0)
             .group_by(bucket, Invoice.currency))
    if customer_id is not None:
        query = query.where(Invoice.customer_id == customer_id)
    found = {(b, c): (int(n), int(s)) for b, c, n, s in session.exec(query).all()}
    currencies = sorted({c for _, c in found}) or ["EUR"]
    return [AgedAmount(b.key, cur, *found.get((b.key, cur), (0, 0)))
            for cur in currencies for b in BUCKETS]


@dataclass
class DsoInputs:
    receivables_cents: int
    credit_sales_cents: int


def dso_inputs(session: Session, today: date, period_days: int, currency: str) -> DsoInputs:
    receivables = session.exec(
        select(func.coalesce(func.sum(Invoice.balance_cents), 0))
        .where(col(Invoice.status).in_(OUTSTANDING), Invoice.currency == currency)).one()
    sales = session.exec(
        select(func.coalesce(func.sum(Invoice.amount_cents), 0))
        .where(col(Invoice.invoice_date) > today - timedelta(days=period_days),
               col(Invoice.invoice_date) <= today, Invoice.currency == currency)).one()
    return DsoInputs(int(receivables), int(sales))


@dataclass
class Statement:
    outstanding_cents: int
    overdue_cents: int
    open_invoices: int
    unapplied_cents: int


def customer_statement(session: Session, customer_id: int, today: date) -> Statement:
    outstanding, overdue, n = session.exec(
        select(func.coalesce(func.sum(Invoice.balance_cents), 0),
               func.coalesce(func.sum(case((col(Invoice.due_date) < today,
                                            Invoice.balance_cents), else_=0)), 0),
               func.count())
        .where(Invoice.customer_id == customer_id, col(Invoice.status).in_(OUTSTANDING))).one()
    unapplied = session.exec(
        select(func.coalesce(func.sum(Payment.unapplied_cents), 0))
        .where(Payment.customer_id == customer_id)).one()
    return Statement(int(outstanding), int(overdue), int(n), int(unapplied))


def outstanding_invoices(session: Session, customer_id: int) -> list[Invoice]:
    return list(session.exec(
        select(Invoice).where(Invoice.customer_id == customer_id,
                              col(Invoice.status).in_(OUTSTANDING))
        .order_by(col(Invoice.due_date))).all())


def recent_messages(session: Session, customer_id: int, limit: int = 10) -> list[OutboxMessage]:
    return list(session.exec(
        select(OutboxMessage).where(OutboxMessage.customer_id == customer_id)
        .order_by(col(OutboxMessage.id).desc()).limit(limit)).all())


def past_calls(session: Session, customer_id: int, limit: int = 10) -> list[CallTask]:
    return list(session.exec(
        select(CallTask).where(CallTask.customer_id == customer_id,
                               CallTask.status == TaskStatus.COMPLETED)
        .order_by(col(CallTask.completed_at).desc()).limit(limit)).all())


@dataclass
class WorklistRow:
    task: CallTask
    invoice: Invoice
    customer: Customer
    promise_broken: bool


@dataclass
class WorklistFilter:
    statuses: list[str] = field(default_factory=lambda: [TaskStatus.OPEN, TaskStatus.CLAIMED])
    assigned_to: str | None = None
    unassigned: bool = False
    customer_ref: str | None = None
    min_balance_cents: int | None = None
    # A do-not-contact customer is not called: its task waits, out of the worklist.
    include_do_not_contact: bool = False


def _promise_broken() -> Any:
    return exists().where(col(AuditEvent.invoice_id) == col(CallTask.invoice_id),
                          col(AuditEvent.kind) == "promise_broken")


def _worklist_query(query: Any, f: WorklistFilter) -> Any:
    query = (query.join(Invoice, Invoice.id == CallTask.invoice_id)
             .join(Customer, Customer.id == CallTask.customer_id)
             .where(col(CallTask.status).in_(f.statuses)))
    if not f.include_do_not_contact:
        query = query.where(col(Customer.do_not_contact).is_(False))
    if f.assigned_to is not None:
        query = query.where(CallTask.assigned_to == f.assigned_to)
    if f.unassigned:
        query = query.where(col(CallTask.assigned_to).is_(None))
    if f.customer_ref:
        query = query.where(Customer.ref == f.customer_ref)
    if f.min_balance_cents is not None:
        query = query.where(col(Invoice.balance_cents) >= f.min_balance_cents)
    return query


@dataclass(frozen=True)
class WorklistKey:
    """What ranking one task needs (`rules.priority`), and nothing else."""

    task_id: int
    balance_cents: int
    due_date: date
    risk: int
    promise_broken: bool
    created_at: datetime


def worklist_keys(session: Session, f: WorklistFilter) -> list[WorklistKey]:
    """One narrow row per matching task (at most one open task per customer): the
    ranking stays in `rules.priority`, and only the page shown loads whole rows
    (`worklist_rows`)."""
    # Six columns: SQLAlchemy's select (sqlmodel's is typed up to four).
    query = _worklist_query(sa_select(col(CallTask.id), col(Invoice.balance_cents),
                                      col(Invoice.due_date), col(Customer.risk),
                                      _promise_broken(), col(CallTask.created_at)), f)
    return [WorklistKey(int(t), int(b), d, int(r), bool(p), c)
            for t, b, d, r, p, c in session.execute(query).all()]


def worklist_rows(session: Session, task_ids: list[int]) -> list[WorklistRow]:
    """The tasks `task_ids`, in that order, with their invoice and customer."""
    if not task_ids:
        return []
    query = (select(CallTask, Invoice, Customer, _promise_broken())
             .join(Invoice, Invoice.id == CallTask.invoice_id)  # type: ignore[arg-type]
             .join(Customer, Customer.id == CallTask.customer_id)  # type: ignore[arg-type]
             .where(col(CallTask.id).in_(task_ids)))
    found = {t.id: WorklistRow(t, i, c, bool(b)) for t, i, c, b in session.exec(query).all()}
    return [found[i] for i in task_ids if i in found]
