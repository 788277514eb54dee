"""Benchmark 1: a CSV of N invoices to every workflow started, through the code
path of `relance import` (parse, ledger import, `start_dunning`), against starting
N trivial bare workflows with the same client and the same concurrency.

No worker polls either task queue: the figure is the start rate, not the work the
workflows do afterwards (that is benchmark 2)."""

from __future__ import annotations

import tempfile
from datetime import date, timedelta
from pathlib import Path
from time import perf_counter
from typing import Any

from sqlmodel import Session
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy

from bench.bare import BareInput, BareStep, BareWorkflow
from bench.context import START_CONCURRENCY, BenchContext, CpuMeter, gather_bounded
from bench.data import invoices_csv
from dunning_client.start import start_dunning
from ledger.crud import import_invoices
from ledger.csv_import import parse_csv


async def relance_import(ctx: BenchContext, invoices: int) -> dict[str, Any]:
    prefix = ctx.prefix("imp")
    settings = ctx.settings_for(ctx.task_queue("import"))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "invoices.csv"
        path.write_text(invoices_csv(invoices, prefix=prefix,
                                     due=date.today() + timedelta(days=30)), encoding="utf-8")
        with CpuMeter(ctx.server_pid) as cpu:
            t0 = perf_counter()
            rows = parse_csv(path.read_text(encoding="utf-8-sig"))
            t_parse = perf_counter()
            with Session(ctx.engine) as session:
                report = import_invoices(session=session, rows=rows)
            t_ledger = perf_counter()
            handles = await start_dunning(ctx.client, ctx.engine, settings,
                                          report.open_invoice_ids,
                                          concurrency=START_CONCURRENCY)
            t_end = perf_counter()
    if len(handles) != invoices:
        raise RuntimeError(f"import started {len(handles)} workflows for {invoices} invoices")
    return {"seconds": t_end - t0, "per_s": invoices / (t_end - t0),
            "parse_s": t_parse - t0, "ledger_s": t_ledger - t_parse, "start_s": t_end - t_ledger,
            "bench_cpu_s": cpu.bench_cpu, "server_cpu_s": cpu.server_cpu}


async def bare_start(ctx: BenchContext, invoices: int) -> dict[str, Any]:
    task_queue = ctx.task_queue("import-bare")
    prefix = ctx.prefix("bare-imp")

    async def start(i: int) -> object:
        return await ctx.client.start_workflow(
            BareWorkflow.run, BareInput(i, [BareStep(0, 1)]), id=f"{prefix}-{i}",
            task_queue=task_queue, id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE)

    with CpuMeter(ctx.server_pid) as cpu:
        handles = await gather_bounded(list(range(invoices)), start)
    if len(handles) != invoices:
        raise RuntimeError("bare start lost workflows")
    return {"seconds": cpu.wall, "per_s": invoices / cpu.wall,
            "bench_cpu_s": cpu.bench_cpu, "server_cpu_s": cpu.server_cpu}
