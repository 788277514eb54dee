"""Building ledgers and workers for tests."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import date

from sqlalchemy import Engine
from sqlmodel import Session, select
from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Worker

from activities.providers.base import MessageProvider
from dunning_client.start import start_dunning, workflow_id
from ledger.crud import InvoiceRow, import_invoices
from ledger.models import AuditEvent, OutboxMessage
from settings import Settings
from worker import build_worker


def settings_for(database_url: str, **overrides: object) -> Settings:
    return Settings(database_url=database_url, environment="test", **overrides)  # type: ignore[arg-type]


def new_worker(client: Client, engine: Engine, settings: Settings,
               executor: ThreadPoolExecutor,
               providers: dict[str, MessageProvider] | None = None) -> Worker:
    return build_worker(client, engine, settings, executor,
                        task_queue=f"tq-{uuid.uuid4()}", providers=providers)


def add_invoices(engine: Engine, *, due: date, amounts: list[int], segment: str = "b2b",
                 email: str | None = "ap@client.example", phone: str | None = "+33612345678",
                 invoice_date: date | None = None, language: str = "fr",
                 customer_ref: str | None = None) -> list[int]:
    ref = customer_ref or f"C-{uuid.uuid4().hex[:8]}"
    rows = [InvoiceRow(customer_ref=ref, customer_name=f"Client {ref}",
                       number=f"F-{uuid.uuid4().hex[:10]}", invoice_date=invoice_date or due,
                       due_date=due, amount_cents=a, segment=segment, email=email, phone=phone,
                       language=language, address="3 rue du Client, 69001 Lyon")
            for a in amounts]
    with Session(engine) as session:
        return import_invoices(session=session, rows=rows).open_invoice_ids


async def start(client: Client, engine: Engine, settings: Settings, worker: Worker,
                invoice_ids: list[int]) -> list[WorkflowHandle]:
    s = settings.model_copy(update={"temporal_task_queue": worker.task_queue})
    # The handles start_workflow returns are the ones that skip time on result().
    handles = {h.id: h for h in await start_dunning(client, engine, s, invoice_ids)}
    return [handles[workflow_id(i)] for i in invoice_ids]


def audit_kinds(engine: Engine, invoice_id: int) -> list[str]:
    with Session(engine) as session:
        return [e.kind for e in session.exec(select(AuditEvent).where(
            AuditEvent.invoice_id == invoice_id).order_by(AuditEvent.id))]  # type: ignore[arg-type]


def messages(engine: Engine, invoice_id: int) -> list[OutboxMessage]:
    with Session(engine) as session:
        return list(session.exec(select(OutboxMessage).where(
            OutboxMessage.invoice_id == invoice_id).order_by(OutboxMessage.id)))  # type: ignore[arg-type]


async def eventually(check, timeout: float = 10.0, interval: float = 0.05):  # type: ignore[no-untyped-def]
    """Retry an async `check` until it stops raising AssertionError (like the SDK's
    assert_eventually); returns its result."""
    import asyncio

    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            return await check()
        except AssertionError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(interval)


async def reach_stage(handle: WorkflowHandle, stage: str, timeout: float = 10.0):  # type: ignore[no-untyped-def]
    """Wait (in real time, no skipping) until the workflow reports `stage`."""
    from workflows.dunning import DunningWorkflow

    async def check():  # type: ignore[no-untyped-def]
        status = await handle.query(DunningWorkflow.status)
        assert status.stage == stage, status
        return status

    return await eventually(check, timeout)


async def advance_to_stage(env, handle: WorkflowHandle, stage: str,  # type: ignore[no-untyped-def]
                           max_days: int = 80):
    """Skip time half a day at a time until the workflow reports `stage`."""
    import asyncio
    from datetime import timedelta

    from workflows.dunning import DunningWorkflow

    for _ in range(max_days * 2):
        status = await handle.query(DunningWorkflow.status)
        if status.stage == stage:
            return status
        await env.sleep(timedelta(hours=12))
        await asyncio.sleep(0.02)
    raise AssertionError(f"never reached {stage}: {status}")
