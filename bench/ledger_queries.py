"""Benchmark 6: the read side over a large ledger. N invoices (600 customers per
10,000), three audit rows per invoice, one call task per customer (half of them
open), a payment per ten invoices; then the product's own report code paths, the
route functions the API calls (`api/routes/reports.py`, `customers.py`, `tasks.py`),
each timed with a fresh session as a request gets one, against a single
`SELECT count(*)` on the table the report reads.

The ledger is bulk-loaded with core `INSERT`s (executemany), never the ORM row by
row, into a database of its own: a fresh SQLite file, and on PostgreSQL a schema
of its own in the given database (dropped afterwards). "No query loads all rows
into Python" is checked by counting the ORM entities each call loads."""

from __future__ import annotations

import gc
import logging
import math
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from time import perf_counter
from typing import Any

from sqlalchemy import Engine, event, func, insert, make_url, text
from sqlalchemy.orm import Mapper
from sqlmodel import Session, select

from api.deps import ApiUser
from api.main import freeze_startup_heap
from api.routes.customers import statement
from api.routes.reports import aging, days_sales_outstanding
from api.routes.tasks import list_tasks
from bench.data import customer_count
from ledger.db import make_engine, migrate
from ledger.models import (
    AuditEvent,
    CallTask,
    Customer,
    Invoice,
    InvoiceStatus,
    Payment,
    Role,
    TaskStatus,
)

log = logging.getLogger("relance.bench.ledger")

AUDIT_PER_INVOICE = 3
CHUNK = 10_000
WARMUP = 2
BAR_MS = 200.0
# A report may load the rows it shows (a page, one customer's invoices), never
# a table: more ORM entities than this share of the invoices fails the bar.
MAX_LOADED_SHARE = 0.01
USER = ApiUser(name="bench", role=Role.ADMIN)
STATUSES = ([InvoiceStatus.OPEN] * 14 + [InvoiceStatus.PAID] * 4
            + [InvoiceStatus.ESCALATED, InvoiceStatus.IN_PAYMENT_PLAN])
STAGES = ["pre_reminder", "reminder_1", "reminder_2", "call", "formal_notice"]
AUDIT_KINDS = ["dunning_started", "message_sent", "payment_applied"]


# --- the ledger --------------------------------------------------------------


@dataclass
class Ledger:
    engine: Engine
    invoices: int
    customers: int
    audit_rows: int
    open_tasks: int
    load_s: float


def _chunks(rows: Iterator[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    chunk: list[dict[str, Any]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _customers(n: int, now: datetime) -> Iterator[dict[str, Any]]:
    for c in range(n):
        yield {"id": c + 1, "ref": f"L-C{c:06d}", "name": f"Client {c}", "segment": "b2b",
               "email": f"ap{c}@client.example", "phone": f"+3361{c:07d}",
               "language": "fr" if c % 3 else "en", "country": "FR",
               "timezone": "Europe/Paris", "address": f"{c} rue du Client, 69001 Lyon",
               "credit_limit_cents": 5_000_000 if c % 4 else None, "risk": c % 6,
               "policy_code": None, "do_not_contact": False, "email_invalid": False,
               "sms_opt_out": False, "created_at": now}


def _status(i: int) -> str:
    return STATUSES[(i * 7) % len(STATUSES)]


def _invoices(n: int, customers: int, today: date, now: datetime) -> Iterator[dict[str, Any]]:
    for i in range(n):
        # Due dates from 30 days ahead to 210 days late: every aging bucket is full.
        due = today + timedelta(days=30 - (i * 13) % 241)
        amount = 10_000 + (i * 7919) % 2_000_000
        status = _status(i)
        yield {"id": i + 1, "number": f"L-F{i:07d}", "customer_id": i % customers + 1,
               "invoice_date": due - timedelta(days=30),
               "due_date": due, "currency": "EUR" if i % 20 else "USD",
               "amount_cents": amount,
               "balance_cents": 0 if status == InvoiceStatus.PAID else amount - (i % 3) * 1000,
               "status": status, "stage": STAGES[i % len(STAGES)], "policy_code": None,
               "next_action": None, "next_action_at": None, "closed_at": None,
               "created_at": now}


def _audit(n: int, customers: int, now: datetime) -> Iterator[dict[str, Any]]:
    for i in range(n):
        invoice = i // AUDIT_PER_INVOICE
        kind = AUDIT_KINDS[i % AUDIT_PER_INVOICE]
        # The worklist ranks a broken promise first: some invoices have one.
        if kind == "payment_applied" and invoice % 17 == 0:
            kind = "promise_broken"
        yield {"id": i + 1, "invoice_id": invoice + 1, "customer_id": invoice % customers + 1,
               "kind": kind, "actor": "workflow", "detail": {"seq": i % AUDIT_PER_INVOICE},
               "dedup_key": f"invoice-{invoice + 1}:{i % AUDIT_PER_INVOICE + 1}",
               "at": now - timedelta(minutes=n - i)}


def _call_tasks(customers: int, now: datetime) -> Iterator[dict[str, Any]]:
    """One task per customer on its first invoice: open or claimed for even
    customers (the worklist), completed for odd ones."""
    for c in range(customers):
        status = TaskStatus.COMPLETED if c % 2 else (
            TaskStatus.CLAIMED if c % 8 == 0 else TaskStatus.OPEN)
        yield {"id": c + 1, "invoice_id": c + 1, "customer_id": c + 1, "step_key": "call",
               "status": status, "reason": "policy step",
               "assigned_to": f"agent-{c % 5}" if status != TaskStatus.OPEN else None,
               "outcome": "no_answer" if status == TaskStatus.COMPLETED else None,
               "notes": None, "promise_date": None, "created_at": now,
               "completed_at": now if status == TaskStatus.COMPLETED else None,
               "completed_by": "agent-0" if status == TaskStatus.COMPLETED else None}


def _payments(invoices: int, customers: int, now: datetime) -> Iterator[dict[str, Any]]:
    for p in range(invoices // 10):
        unapplied = p % 5 == 0
        amount = 5_000 + p % 100_000
        yield {"id": p + 1, "source": "gw:bank", "external_id": f"L-P{p:07d}",
               "invoice_id": None if unapplied else p * 10 + 1,
               "customer_id": (p * 10) % customers + 1, "amount_cents": amount,
               "applied_cents": 0 if unapplied else amount,
               "unapplied_cents": amount if unapplied else 0, "currency": "EUR",
               "received_at": now, "signalled_at": None if unapplied else now}


def load_ledger(engine: Engine, invoices: int) -> Ledger:
    """Bulk-insert the ledger in chunks of core INSERTs, one transaction per table."""
    today = datetime.now(UTC).date()
    now = datetime.now(UTC)
    customers = customer_count(invoices)
    audit_rows = invoices * AUDIT_PER_INVOICE
    t0 = perf_counter()
    tables: list[tuple[Any, Iterator[dict[str, Any]]]] = [
        (Customer, _customers(customers, now)),
        (Invoice, _invoices(invoices, customers, today, now)),
        (AuditEvent, _audit(audit_rows, customers, now)),
        (CallTask, _call_tasks(customers, now)),
        (Payment, _payments(invoices, customers, now)),
    ]
    for model, rows in tables:
        with engine.begin() as conn:
            for chunk in _chunks(rows):
                conn.execute(insert(model.__table__), chunk)  # type: ignore[attr-defined]
    if engine.dialect.name == "postgresql":
        # Autovacuum would do it within the minute on a real server; do not time
        # the queries before the planner has statistics.
        with engine.begin() as conn:
            conn.execute(text("ANALYZE"))
    load_s = perf_counter() - t0
    open_tasks = sum(1 for c in range(customers) if c % 2 == 0)
    return Ledger(engine, invoices, customers, audit_rows, open_tasks, load_s)


# --- where the ledger lives ----------------------------------------------------


@contextmanager
def sqlite_ledger(workdir: Path) -> Iterator[Engine]:
    url = f"sqlite:///{workdir / f'ledger6-{uuid.uuid4().hex[:6]}.db'}"
    migrate(url)
    engine = make_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()


@contextmanager
def postgres_ledger(url: str) -> Iterator[Engine]:
    """A schema of its own in the given database, first on the search path, so
    the migrations and the load touch nothing else; dropped on exit."""
    schema = f"bench6_{uuid.uuid4().hex[:8]}"
    admin = make_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    scoped = make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})
    scoped_url = scoped.render_as_string(hide_password=False)
    engine: Engine | None = None
    try:
        migrate(scoped_url)
        engine = make_engine(scoped_url)
        yield engine
    finally:
        if engine is not None:
            engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def postgres_unreachable(url: str) -> str | None:
    """None when the server answers, else why not (one line)."""
    try:
        engine = make_engine(url)
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return None
    except Exception as err:  # any driver or network error means "skip it"
        return str(err).strip().splitlines()[0]


# --- timing --------------------------------------------------------------------


class EntityCounter:
    """ORM entities materialised between start and stop, across every mapped class."""

    def __init__(self) -> None:
        self.loaded = 0

    def _on_load(self, *_: Any) -> None:
        self.loaded += 1

    def __enter__(self) -> EntityCounter:
        event.listen(Mapper, "load", self._on_load)
        return self

    def __exit__(self, *exc: object) -> None:
        event.remove(Mapper, "load", self._on_load)


def percentile(samples: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def timed(engine: Engine, call: Callable[[Session, int], object],
          iterations: int) -> dict[str, Any]:
    """p50/p99 in ms of `call(session, i)`, a fresh session each time (as a
    request gets one), and the most ORM entities one call loaded."""
    for i in range(WARMUP):
        with Session(engine, expire_on_commit=False) as session:
            call(session, i)
    samples: list[float] = []
    most_loaded = 0
    for i in range(iterations):
        with EntityCounter() as counter, Session(engine, expire_on_commit=False) as session:
            t0 = perf_counter()
            call(session, i)
            samples.append((perf_counter() - t0) * 1000)
        most_loaded = max(most_loaded, counter.loaded)
    return {"p50_ms": percentile(samples, 50), "p99_ms": percentile(samples, 99),
            "max_ms": max(samples), "iterations": iterations, "max_entities": most_loaded}


def _count(model: Any) -> Callable[[Session, int], object]:
    def call(session: Session, _: int) -> object:
        return session.exec(select(func.count()).select_from(model)).one()
    return call


def queries(ledger: Ledger) -> dict[str, tuple[Any, Callable[[Session, int], object]]]:
    """Report name: (table it reads, the route's own function called as a request would)."""
    def statement_of(session: Session, i: int) -> object:
        # A different customer each time, spread over the whole ledger.
        return statement((i * 7919) % ledger.customers + 1, session, USER)

    return {
        "aged balance": (Invoice, lambda s, _: aging(s, USER)),
        "DSO": (Invoice, lambda s, _: days_sales_outstanding(s, USER, 90, "EUR")),
        "customer statement": (Invoice, statement_of),
        "worklist (page 1)": (CallTask, lambda s, _: list_tasks(
            s, USER, status="any", mine=False, unassigned=False, customer_ref=None,
            min_balance=None, page=1, size=20)),
    }


def measure(ledger: Ledger, iterations: int) -> dict[str, Any]:
    counts: dict[str, dict[str, Any]] = {}
    results: dict[str, Any] = {}
    freeze_startup_heap()  # as the API process does once started
    try:
        for name, (table, call) in queries(ledger).items():
            key = table.__tablename__
            if key not in counts:
                counts[key] = timed(ledger.engine, _count(table), iterations)
            results[name] = {"query": timed(ledger.engine, call, iterations),
                             "count": counts[key], "table": key}
    finally:
        gc.unfreeze()
    return results


def run_ledger(engine: Engine, invoices: int, iterations: int) -> dict[str, Any]:
    ledger = load_ledger(engine, invoices)
    log.info("loaded %d invoices, %d audit rows in %.1f s", invoices, ledger.audit_rows,
             ledger.load_s)
    return {"invoices": invoices, "audit_rows": ledger.audit_rows,
            "customers": ledger.customers, "open_tasks": ledger.open_tasks,
            "load_s": ledger.load_s, "queries": measure(ledger, iterations)}


def entity_bound(invoices: int) -> int:
    return max(100, int(invoices * MAX_LOADED_SHARE))
