"""Benchmark 4: peak resident memory of a worker process holding N open invoice
workflows that wait on their next timer (real calendar: the pre-reminder is weeks
away), against a bare worker process holding N bare workflows that ran one no-op
activity and wait on a timer as long.

Each worker is a separate process (the product's `python -m worker`, and
`python -m bench.bare_worker`); the peak is the kernel's high-water mark (VmHWM),
or the highest sample where /proc is missing."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from collections import deque
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import psutil
from sqlalchemy import func
from sqlmodel import Session, col, select
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy

from bench.bare import BareInput, BareStep, BareWorkflow
from bench.context import BenchContext, gather_bounded
from bench.data import invoices_csv
from bench.server import stop_process
from dunning_client.start import start_dunning
from ledger.crud import import_invoices
from ledger.csv_import import parse_csv
from ledger.models import Invoice

ROOT = Path(__file__).resolve().parent.parent
WAIT_DAYS = 25
SAMPLE_S = 0.2
IDLE_CPU_PERCENT = 3.0
IDLE_SAMPLES = 10  # two seconds below the idle threshold
TIMEOUT_S = 900.0


class WorkerProcess:
    def __init__(self, args: list[str], ctx: BenchContext, task_queue: str) -> None:
        env = {**os.environ, "RELANCE_TEMPORAL_ADDRESS": ctx.settings.temporal_address,
               "RELANCE_DATABASE_URL": ctx.database_url,
               "RELANCE_TEMPORAL_TASK_QUEUE": task_queue, "RELANCE_ENVIRONMENT": "test"}
        self.proc = subprocess.Popen([sys.executable, "-m", *args], cwd=ROOT, env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     text=True)
        self.ps = psutil.Process(self.proc.pid)
        self.sampled_peak = 0
        # The worker logs every activity: its stderr is drained for as long as it
        # runs, or it blocks on a full pipe once the bench stops reading.
        self.polling = threading.Event()
        self.last_lines: deque[str] = deque(maxlen=20)
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.last_lines.append(line)
            if "worker polling" in line:
                self.polling.set()

    async def ready(self) -> None:
        """The worker logs 'worker polling' just before it polls."""
        while not self.polling.is_set():
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited with {self.proc.returncode}: "
                                   f"{''.join(self.last_lines)}")
            await asyncio.sleep(0.1)

    def rss(self) -> int:
        rss = int(self.ps.memory_info().rss)
        self.sampled_peak = max(self.sampled_peak, rss)
        return rss

    def peak(self) -> int:
        status = Path(f"/proc/{self.proc.pid}/status")
        if status.exists():
            for line in status.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        return self.sampled_peak

    async def settle(self, done: Any) -> None:
        """Sample until `done()` holds and the process has been idle for a while."""
        idle = 0
        self.ps.cpu_percent()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + TIMEOUT_S
        while idle < IDLE_SAMPLES:
            await asyncio.sleep(SAMPLE_S)
            self.rss()
            busy = self.ps.cpu_percent()
            idle = idle + 1 if busy < IDLE_CPU_PERCENT and await done() else 0
            if loop.time() > deadline:
                raise RuntimeError("workflows did not settle on their timers")

    def stop(self) -> None:
        stop_process(self.proc)


async def relance_memory(ctx: BenchContext, invoices: int) -> dict[str, Any]:
    task_queue = ctx.task_queue("memory")
    settings = ctx.settings_for(task_queue)
    rows = parse_csv(invoices_csv(invoices, prefix=ctx.prefix("mem"),
                                  due=date.today() + timedelta(days=WAIT_DAYS + 5)))
    with Session(ctx.engine) as session:
        ids = import_invoices(session=session, rows=rows).open_invoice_ids
    worker = WorkerProcess(["worker"], ctx, task_queue)
    try:
        await worker.ready()
        await asyncio.sleep(1)
        idle_rss = worker.rss()
        await start_dunning(ctx.client, ctx.engine, settings, ids)

        async def scheduled() -> bool:
            with Session(ctx.engine) as session:
                waiting = session.exec(select(func.count()).select_from(Invoice).where(
                    col(Invoice.id).in_(ids), col(Invoice.next_action_at).is_not(None))).one()
            return bool(waiting == invoices)

        await worker.settle(scheduled)
        return _figures(worker, idle_rss, invoices)
    finally:
        worker.stop()


async def bare_memory(ctx: BenchContext, invoices: int) -> dict[str, Any]:
    task_queue = ctx.task_queue("memory-bare")
    worker = WorkerProcess(["bench.bare_worker", task_queue], ctx, task_queue)
    steps = [BareStep(0, 1), BareStep(WAIT_DAYS * 86400, 0)]
    prefix = ctx.prefix("bare-mem")
    try:
        await worker.ready()
        await asyncio.sleep(1)
        idle_rss = worker.rss()

        async def start(i: int) -> object:
            return await ctx.client.start_workflow(
                BareWorkflow.run, BareInput(i, steps), id=f"{prefix}-{i}",
                task_queue=task_queue, id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE)

        handles = await gather_bounded(list(range(invoices)), start)

        async def waiting_on_timer() -> bool:
            # The last workflow started is the last to reach its timer.
            desc = await handles[-1].describe()
            return not desc.raw_description.pending_activities and desc.history_length >= 11

        await worker.settle(waiting_on_timer)
        return _figures(worker, idle_rss, invoices)
    finally:
        worker.stop()


def _figures(worker: WorkerProcess, idle_rss: int, invoices: int) -> dict[str, Any]:
    steady = worker.rss()
    return {"peak_mb": worker.peak() / 2**20, "steady_mb": steady / 2**20,
            "idle_mb": idle_rss / 2**20,
            "kb_per_workflow": (steady - idle_rss) / 1024 / invoices}
