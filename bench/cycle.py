"""Benchmark 2: N overdue invoices run their whole dunning cycle in compressed
time (one policy day = `day_seconds`), outbox provider, no payments, all closed
as escalated; then N bare workflows with the very same timers and the same count
of activities, read off one Relance history.

Both run on an in-process worker built with the same settings. The figure is
cycles per second from the first start to the last close (server close times)."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy

from bench.bare import BareInput, BareStep, BareWorkflow
from bench.bare_worker import build_bare_worker
from bench.context import BenchContext, CpuMeter, gather_bounded
from bench.data import invoices_csv
from dunning_client.start import start_dunning, workflow_id
from ledger.crud import import_invoices
from ledger.csv_import import parse_csv
from ledger.models import Invoice
from worker import build_worker

DAY_SECONDS = 1  # settings.day_seconds is an int: one second is the shortest day
POLL_S = 0.25


async def relance_cycle(ctx: BenchContext, invoices: int) -> dict[str, Any]:
    task_queue = ctx.task_queue("cycle")
    settings = ctx.settings_for(task_queue, day_seconds=DAY_SECONDS)
    prefix = ctx.prefix("cyc")
    rows = parse_csv(invoices_csv(invoices, prefix=prefix,
                                  due=date.today() - timedelta(days=10)))
    with Session(ctx.engine) as session:
        ids = import_invoices(session=session, rows=rows).open_invoice_ids
    async with build_worker(ctx.client, ctx.engine, settings, ctx.executor):
        with CpuMeter(ctx.server_pid) as cpu:
            started = datetime.now(UTC)
            await start_dunning(ctx.client, ctx.engine, settings, ids)
            last_close = await wait_all_closed(ctx.client, task_queue, invoices)
    with Session(ctx.engine) as session:
        escalated = session.exec(select(func.count()).select_from(Invoice).where(
            col(Invoice.id).in_(ids), Invoice.status == "escalated")).one()
    if escalated != invoices:
        raise RuntimeError(f"{escalated} of {invoices} invoices closed as escalated")
    seconds = (last_close - started).total_seconds()
    shape = await history_shape(ctx.client, workflow_id(ids[0]))
    return {"seconds": seconds, "per_s": invoices / seconds, "shape": shape,
            "bench_cpu_s": cpu.bench_cpu, "server_cpu_s": cpu.server_cpu}


async def bare_cycle(ctx: BenchContext, invoices: int,
                     shape: list[dict[str, float]]) -> dict[str, Any]:
    task_queue = ctx.task_queue("cycle-bare")
    steps = [BareStep(s["timer_seconds"], int(s["activities"])) for s in shape]
    prefix = ctx.prefix("bare-cyc")

    async def start(i: int) -> object:
        return await ctx.client.start_workflow(
            BareWorkflow.run, BareInput(i, steps), id=f"{prefix}-{i}", task_queue=task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE)

    async with build_bare_worker(ctx.client, ctx.settings, ctx.executor, task_queue):
        with CpuMeter(ctx.server_pid) as cpu:
            started = datetime.now(UTC)
            await gather_bounded(list(range(invoices)), start)
            last_close = await wait_all_closed(ctx.client, task_queue, invoices)
    seconds = (last_close - started).total_seconds()
    return {"seconds": seconds, "per_s": invoices / seconds,
            "bench_cpu_s": cpu.bench_cpu, "server_cpu_s": cpu.server_cpu}


async def wait_all_closed(client: Client, task_queue: str, expected: int) -> datetime:
    """Wait until no workflow of the queue runs; the latest close time, after
    checking that all `expected` completed."""
    query = f"TaskQueue = '{task_queue}'"
    while True:
        await asyncio.sleep(POLL_S)
        total = (await client.count_workflows(query)).count
        running = (await client.count_workflows(
            f"{query} AND ExecutionStatus = 'Running'")).count
        if total >= expected and running == 0:
            break
    last: datetime | None = None
    completed = 0
    async for wf in client.list_workflows(query):
        completed += wf.status == WorkflowExecutionStatus.COMPLETED
        if wf.close_time is not None and (last is None or wf.close_time > last):
            last = wf.close_time
    if completed != expected or last is None:
        raise RuntimeError(f"{completed} of {expected} workflows completed on {task_queue}")
    return last


async def history_shape(client: Client, wf_id: str) -> list[dict[str, float]]:
    """The timers and activities of one workflow, in order: each step is a timer
    (0 for the first) followed by the activities scheduled before the next timer."""
    steps: list[dict[str, float]] = [{"timer_seconds": 0.0, "activities": 0}]
    history = await client.get_workflow_handle(wf_id).fetch_history()
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_TIMER_STARTED:
            fire = event.timer_started_event_attributes.start_to_fire_timeout
            steps.append({"timer_seconds": fire.ToTimedelta().total_seconds(),
                          "activities": 0})
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            steps[-1]["activities"] += 1
    return steps
