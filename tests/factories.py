"""Building ledgers and workers for tests."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, select
from temporalio.api.enums.v1 import EventType
from temporalio.client import (
    Client,
    Interceptor,
    OutboundInterceptor,
    StartWorkflowInput,
    WorkflowHandle,
)
from temporalio.service import RPCError
from temporalio.worker import Worker

from activities.providers.base import MessageProvider
from dunning_client.start import start_dunning, workflow_id
from ledger.crud import InvoiceRow, import_invoices
from ledger.models import AuditEvent, OutboxMessage
from settings import Settings
from worker import build_worker


def settings_for(database_url: str, **overrides: object) -> Settings:
    return Settings(database_url=database_url, environment="test", **overrides)  # type: ignore[arg-type]


class StartedWorkflows(Interceptor):
    """Remembers the workflows started through the test client (time-skipping)."""

    def __init__(self) -> None:
        self.ids: list[str] = []

    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
        return _RecordStarts(next, self.ids)

    async def terminate_all(self, client: Client, *, settle: bool = True) -> None:
        """Let the workflows settle first: a worker stopped with a task in flight
        keeps the time-skipping server from skipping time for every later test."""
        ids, self.ids[:] = list(self.ids), []
        for started_id in ids:
            handle = client.get_workflow_handle(started_id)
            with contextlib.suppress(RPCError):  # already closed: nothing to do
                if settle:  # only while a worker still runs them
                    await _no_task_in_flight(handle)
                await handle.terminate("test ended")


async def _no_task_in_flight(handle: WorkflowHandle[Any, Any], timeout: float = 10) -> None:
    """Until no workflow or activity task is outstanding in the history (the test
    server's describe does not report them); an activity still retrying after
    `timeout` is left to termination."""
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        outstanding = 0
        async for event in handle.fetch_history_events():
            name = EventType.Name(event.event_type)
            if name.endswith("_TASK_SCHEDULED"):
                outstanding += 1
            elif name.endswith(("_TASK_COMPLETED", "_TASK_FAILED", "_TASK_TIMED_OUT",
                                "_TASK_CANCELED")):
                outstanding -= 1
        if outstanding <= 0:
            return
        await asyncio.sleep(0.05)


class _RecordStarts(OutboundInterceptor):
    def __init__(self, next: OutboundInterceptor, ids: list[str]) -> None:
        super().__init__(next)
        self.ids = ids

    async def start_workflow(self, input: StartWorkflowInput) -> WorkflowHandle[Any, Any]:
        handle = await super().start_workflow(input)
        self.ids.append(input.id)
        return handle


STARTED = StartedWorkflows()


@contextlib.asynccontextmanager
async def new_worker(client: Client, engine: Engine, settings: Settings,
                     executor: ThreadPoolExecutor,
                     providers: dict[str, MessageProvider] | None = None
                     ) -> AsyncIterator[Worker]:
    """A running worker on a fresh task queue. If the test fails inside, its
    workflows are terminated while the worker still runs: a worker stopped with a
    task in flight leaves the time-skipping server unable to skip time for every
    later test."""
    async with build_worker(client, engine, settings, executor,
                            task_queue=f"tq-{uuid.uuid4()}", providers=providers) as worker:
        try:
            yield worker
        except BaseException:
            await STARTED.terminate_all(client)
            raise


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
