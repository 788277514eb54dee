"""Benchmark 3: payment webhooks against invoices mid-cycle. N open invoices whose
workflows wait on their next step (real calendar), a worker process
(`python -m worker`) and the API served by uvicorn on 127.0.0.1 (`api.main:app`,
a process of its own); a load generator posts signed payments to
`/webhooks/payments` at a fixed rate for a fixed time (open loop, bounded in count,
in flight and time). Each invoice gets the same number of partial payments, the
last of which settles it, so every invoice closes as paid.

Figures: HTTP latency (request sent to 200 received); webhook received to workflow
closed (the settling request's send time to the workflow's close time on the
server); errors (transport errors, non-200, payments left to the reconciler);
lost (an acknowledged payment missing from the ledger, or an invoice whose settling
payment was acknowledged and that did not close as paid, in the ledger and in
Temporal, within SETTLE_S). A request the generator could not send within its
bounds (all in-flight slots busy until the drain ends) is an error, not a loss.

Bare: N `BarePaymentWorkflow`s waiting on a timer in a bare worker process, the
same schedule of signals sent with `Client.signal`, the same activity count per
payment read off one Relance history; signal-to-close."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from time import perf_counter
from typing import Any

import httpx
from sqlalchemy import func
from sqlmodel import Session, col, select
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy

from api.signatures import sign
from bench.bare import BarePaymentInput, BarePaymentWorkflow
from bench.context import BenchContext, gather_bounded
from bench.data import invoices_csv
from bench.ledger_queries import percentile
from bench.memory import ROOT, WorkerProcess
from bench.server import free_port, stop_process
from dunning_client.start import start_dunning, workflow_id
from ledger.crud import import_invoices
from ledger.csv_import import parse_csv
from ledger.models import Invoice, InvoiceStatus, Payment

WAIT_DAYS = 25  # the next step is weeks away: the workflows wait on a timer
GATEWAY = "bench"
MAX_IN_FLIGHT = 200
REQUEST_TIMEOUT_S = 10.0
DRAIN_S = 30.0  # after the last send, every response must arrive within this
# Then every workflow paid must close within this; the API (and its reconciler,
# which re-signals payments Temporal did not get) keeps running meanwhile.
SETTLE_S = 180.0
READY_TIMEOUT_S = 60.0
POLL_S = 0.25


@dataclass(frozen=True)
class Load:
    rate: float  # requests per second
    seconds: float

    @property
    def requests(self) -> int:
        return int(self.rate * self.seconds)


@dataclass(frozen=True)
class Send:
    """One scheduled payment: which invoice, which part, when (seconds from t0)."""

    seq: int
    invoice: int
    part: int
    at: float


@dataclass
class Sent:
    send: Send
    wall: datetime | None = None
    ms: float | None = None
    error: str | None = None
    settles: bool = False


@dataclass
class Schedule:
    invoices: int
    parts: int
    sends: list[Send] = field(default_factory=list)


def schedule(invoices: int, load: Load) -> Schedule:
    """Round robin over the invoices, part 1 to everyone, then part 2...: as many
    whole rounds as the load holds, so every invoice paid is paid in full."""
    parts = max(1, load.requests // invoices)
    paid = min(invoices, load.requests)
    sends = [Send(seq, seq % paid, seq // paid, seq / load.rate) for seq in range(paid * parts)]
    return Schedule(paid, parts, sends)


def split(balance_cents: int, parts: int, part: int) -> int:
    """Equal parts, the remainder on the last one (which settles the balance)."""
    each = balance_cents // parts
    return balance_cents - each * (parts - 1) if part == parts - 1 else each


async def run_load(plan: Schedule, fire: Callable[[Send], Awaitable[str | None]],
                   settles: Callable[[Send], bool]) -> tuple[list[Sent], float]:
    """Fire each send at its time (open loop): at most MAX_IN_FLIGHT at once, each
    bounded by REQUEST_TIMEOUT_S, the whole load by its length plus DRAIN_S.
    Returns what happened to each send and the achieved rate."""
    gate = asyncio.Semaphore(MAX_IN_FLIGHT)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    results = [Sent(s, settles=settles(s)) for s in plan.sends]

    async def one(sent: Sent) -> None:
        async with gate:
            sent.wall = datetime.now(UTC)
            start = perf_counter()
            try:
                sent.error = await asyncio.wait_for(fire(sent.send), REQUEST_TIMEOUT_S)
            except TimeoutError:
                sent.error = "timeout"
            except Exception as err:  # a failed request is a figure, not a crash
                sent.error = f"{type(err).__name__}: {err}"
            sent.ms = (perf_counter() - start) * 1000

    tasks: list[asyncio.Task[None]] = []
    for sent in results:
        delay = t0 + sent.send.at - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(sent)))
    last_sent = loop.time() - t0
    done, pending = await asyncio.wait(tasks, timeout=DRAIN_S) if tasks else (set(), set())
    for task in pending:
        task.cancel()
    for sent in results:
        if sent.ms is None:
            sent.error = sent.error or "not answered within the drain time"
    return results, len(results) / last_sent if last_sent > 0 else float("inf")


async def close_times(client: Client, task_queue: str, expected: int) -> dict[str, Any]:
    """Wait (bounded) until `expected` workflows of the queue completed; then
    id -> (status, close time) for every workflow of the queue."""
    query = f"TaskQueue = '{task_queue}'"
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SETTLE_S
    while loop.time() < deadline:
        done = await client.count_workflows(f"{query} AND ExecutionStatus = 'Completed'")
        if done.count >= expected:
            break
        await asyncio.sleep(POLL_S)
    found: dict[str, Any] = {}
    async for wf in client.list_workflows(query):
        found[wf.id] = (wf.status, wf.close_time)
    return found


def settled(sent: list[Sent]) -> set[int]:
    """Invoices whose settling payment was acknowledged: each must close as paid."""
    return {s.send.invoice for s in sent if s.settles and s.error is None}


def _completed(closes: dict[str, Any], wf_id: str) -> bool:
    return bool(closes.get(wf_id, (None,))[0] == WorkflowExecutionStatus.COMPLETED)


def _latency_figures(sent: list[Sent], closes: dict[str, Any],
                     wf_id: Callable[[Send], str]) -> dict[str, Any]:
    ok = [s for s in sent if s.error is None and s.ms is not None]
    close_ms = []
    for s in sent:
        if not s.settles or s.error is not None or s.wall is None:
            continue
        status, closed = closes.get(wf_id(s.send), (None, None))
        if status == WorkflowExecutionStatus.COMPLETED and closed is not None:
            close_ms.append((closed - s.wall).total_seconds() * 1000)
    ms = [s.ms for s in ok if s.ms is not None]
    errors = [s.error for s in sent if s.error is not None]
    return {"requests": len(sent), "errors": len(errors),
            "unanswered": sum(1 for s in sent if s.wall is None or s.error == "timeout"),
            "error_samples": sorted(set(errors))[:5],
            "http_p50_ms": percentile(ms, 50) if ms else float("nan"),
            "http_p99_ms": percentile(ms, 99) if ms else float("nan"),
            "close_p50_ms": percentile(close_ms, 50) if close_ms else float("nan"),
            "close_p99_ms": percentile(close_ms, 99) if close_ms else float("nan"),
            "closes_measured": len(close_ms)}


# --- Relance -----------------------------------------------------------------------


class ApiProcess:
    """`uvicorn api.main:app` on 127.0.0.1, configured by the environment as in production."""

    def __init__(self, ctx: BenchContext, secret: str) -> None:
        self.port = free_port()
        env = {**os.environ, "RELANCE_TEMPORAL_ADDRESS": ctx.settings.temporal_address,
               "RELANCE_DATABASE_URL": ctx.database_url, "RELANCE_ENVIRONMENT": "test",
               "RELANCE_GENERIC_WEBHOOK_SECRET": secret}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "api.main:app", "--host", "127.0.0.1",
             "--port", str(self.port), "--log-level", "warning", "--no-access-log"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.base_url = f"http://127.0.0.1:{self.port}"

    async def ready(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + READY_TIMEOUT_S
        async with httpx.AsyncClient(base_url=self.base_url) as http:
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"the API exited with {self.proc.returncode}")
                try:
                    if (await http.get("/health")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                if loop.time() > deadline:
                    raise RuntimeError("the API did not answer /health")
                await asyncio.sleep(0.2)

    def stop(self) -> None:
        stop_process(self.proc)


async def _until(check: Callable[[], Awaitable[bool]], what: str,
                 timeout_s: float = 600.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not await check():
        if loop.time() > deadline:
            raise RuntimeError(f"timed out waiting until {what}")
        await asyncio.sleep(POLL_S)


async def relance_payments(ctx: BenchContext, invoices: int, load: Load) -> dict[str, Any]:
    task_queue = ctx.task_queue("payments")
    settings = ctx.settings_for(task_queue)
    secret = secrets.token_hex(16)
    rows = parse_csv(invoices_csv(invoices, prefix=ctx.prefix("pay"),
                                  due=date.today() + timedelta(days=WAIT_DAYS)))
    with Session(ctx.engine) as session:
        ids = import_invoices(session=session, rows=rows).open_invoice_ids
        numbers = dict(session.exec(select(Invoice.id, Invoice.number)
                                    .where(col(Invoice.id).in_(ids))).all())
        balances = dict(session.exec(select(Invoice.id, Invoice.balance_cents)
                                     .where(col(Invoice.id).in_(ids))).all())
    plan = schedule(invoices, load)
    event_prefix = ctx.prefix("evt")
    worker = WorkerProcess(["worker"], ctx, task_queue)
    api = ApiProcess(ctx, secret)
    try:
        await worker.ready()
        worker_log = worker.last_lines
        await api.ready()
        await start_dunning(ctx.client, ctx.engine, settings, ids)

        async def all_waiting() -> bool:
            with Session(ctx.engine) as session:
                waiting = session.exec(select(func.count()).select_from(Invoice).where(
                    col(Invoice.id).in_(ids), col(Invoice.next_action_at).is_not(None))).one()
            return bool(waiting == len(ids))

        try:
            await _until(all_waiting, "every invoice waits on its next step")
        except RuntimeError as err:
            raise RuntimeError(f"{err}; worker log: {' | '.join(worker_log)}") from None
        await asyncio.sleep(1)  # let the worker finish its last workflow tasks
        limits = httpx.Limits(max_connections=MAX_IN_FLIGHT,
                              max_keepalive_connections=MAX_IN_FLIGHT)
        async with httpx.AsyncClient(base_url=api.base_url, limits=limits,
                                     timeout=REQUEST_TIMEOUT_S) as http:

            async def post(send: Send) -> str | None:
                invoice_id = ids[send.invoice]
                amount = split(balances[invoice_id], plan.parts, send.part)
                body = json.dumps({
                    "event_id": f"{event_prefix}-{send.seq}", "gateway": GATEWAY,
                    "amount": f"{amount // 100}.{amount % 100:02d}", "currency": "EUR",
                    "invoice_number": numbers[invoice_id]}).encode()
                r = await http.post("/webhooks/payments", content=body, headers={
                    "Relance-Signature": sign(body, secret), "Content-Type": "application/json"})
                if r.status_code != 200:
                    return f"HTTP {r.status_code}: {r.text[:200]}"
                ack = r.json()
                if ack.get("status") != "recorded" or not ack.get("signalled"):
                    return f"not recorded and signalled: {ack}"
                return None

            sent, achieved = await run_load(plan, post, lambda s: s.part == plan.parts - 1)
        must_close = [ids[i] for i in settled(sent)]
        closes = await close_times(ctx.client, task_queue, len(must_close))
        closed_ids = [i for i in ids if _completed(closes, workflow_id(i))]
        if not closed_ids:
            statuses = Counter(str(status) for status, _ in closes.values())
            brief = _latency_figures(sent, closes, lambda s: workflow_id(ids[s.invoice]))
            raise RuntimeError(
                f"no invoice workflow closed within {SETTLE_S:.0f} s ({dict(statuses)}; "
                f"worker exit code {worker.proc.poll()}; {brief}); worker log: "
                + " | ".join(worker_log))
        shape = await payment_shape(ctx.client, workflow_id(closed_ids[0]))
    finally:
        api.stop()
        worker.stop()
    figures = _latency_figures(sent, closes, lambda s: workflow_id(ids[s.invoice]))
    acknowledged = {f"{event_prefix}-{s.send.seq}" for s in sent if s.error is None}
    with Session(ctx.engine) as session:
        recorded = set(session.exec(select(Payment.external_id).where(
            Payment.source == f"gw:{GATEWAY}",
            col(Payment.external_id).startswith(f"{event_prefix}-"))).all())
        paid_in_ledger = set(session.exec(select(Invoice.id).where(
            col(Invoice.id).in_(must_close), Invoice.status == InvoiceStatus.PAID)).all())
    closed_paid = paid_in_ledger & set(closed_ids)
    figures.update({
        "invoices": invoices, "parts": plan.parts, "achieved_rate": achieved,
        "payments_recorded": len(recorded), "payments_acknowledged": len(acknowledged),
        "invoices_settled": len(must_close), "invoices_paid_in_ledger": len(paid_in_ledger),
        "workflows_closed": len(set(must_close) & set(closed_ids)),
        # Acknowledged (200, signalled) yet missing, or settled yet not closed as paid.
        "lost": len(acknowledged - recorded) + len(set(must_close) - closed_paid),
        "shape": shape})
    return figures


async def payment_shape(client: Client, wf_id: str) -> dict[str, int]:
    """Activities a Relance workflow ran after a payment that left a balance, and
    after the one that settled it (read off its history)."""
    history = await client.get_workflow_handle(wf_id).fetch_history()
    counts: list[int] = []
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
            counts.append(0)
        elif counts and event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            counts[-1] += 1
    if not counts:
        raise RuntimeError(f"{wf_id} received no payment")
    return {"activities_per_payment": counts[0] if len(counts) > 1 else 0,
            "activities_on_close": counts[-1]}


# --- bare ----------------------------------------------------------------------------


async def bare_payments(ctx: BenchContext, invoices: int, load: Load,
                        shape: dict[str, int]) -> dict[str, Any]:
    task_queue = ctx.task_queue("payments-bare")
    prefix = ctx.prefix("bare-pay")
    plan = schedule(invoices, load)
    balance = 300_000
    worker = WorkerProcess(["bench.bare_worker", task_queue], ctx, task_queue)
    try:
        await worker.ready()

        async def start(i: int) -> Any:
            return await ctx.client.start_workflow(
                BarePaymentWorkflow.run,
                BarePaymentInput(i, balance, WAIT_DAYS * 86400, shape["activities_per_payment"],
                                 shape["activities_on_close"]),
                id=f"{prefix}-{i}", task_queue=task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE)

        handles = await gather_bounded(list(range(invoices)), start)

        async def all_waiting() -> bool:
            # Started, first task done, timer started: five events.
            lengths = await gather_bounded(handles, lambda h: h.describe())
            return all(d.history_length >= 5 for d in lengths)

        await _until(all_waiting, "every bare workflow waits on its timer")
        await asyncio.sleep(1)

        async def signal(send: Send) -> str | None:
            await handles[send.invoice].signal(BarePaymentWorkflow.paid,
                                               split(balance, plan.parts, send.part))
            return None

        sent, achieved = await run_load(plan, signal, lambda s: s.part == plan.parts - 1)
        must_close = settled(sent)
        closes = await close_times(ctx.client, task_queue, len(must_close))
    finally:
        worker.stop()
    figures = _latency_figures(sent, closes, lambda s: f"{prefix}-{s.invoice}")
    closed = sum(1 for i in must_close if _completed(closes, f"{prefix}-{i}"))
    figures.update({"invoices": invoices, "parts": plan.parts, "achieved_rate": achieved,
                    "invoices_settled": len(must_close), "workflows_closed": closed,
                    "lost": len(must_close) - closed})
    return figures
