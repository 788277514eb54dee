"""The benchmarks of one run, in order, and the sizes of each mode.

Each benchmark is a `Benchmark(name, run)` whose `run(ctx, plan, figures)` returns
table rows and may read what earlier benchmarks left in `figures` (growth reads
the import and cycle runs)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console

from bench import bulk_import, cycle, ledger_queries, memory, payments
from bench.context import BenchContext, Row

console = Console(width=132)

Figures = dict[str, Any]


@dataclass
class Plan:
    import_sizes: list[int]
    cycle_sizes: list[int]
    cycle_headline: int
    memory_size: int
    payment_invoices: int
    webhook_rate: float
    webhook_seconds: float
    ledger_invoices: int
    ledger_iterations: int
    only: set[str] = field(default_factory=set)
    # PostgreSQL server for the ledger benchmark (a schema of its own, dropped after).
    postgres_url: str | None = None


FULL = Plan(import_sizes=[1000, 2000, 5000, 10_000], cycle_sizes=[1000, 2000, 5000, 10_000],
            cycle_headline=2000, memory_size=10_000, payment_invoices=2000, webhook_rate=100,
            webhook_seconds=60, ledger_invoices=100_000, ledger_iterations=100)
QUICK = Plan(import_sizes=[100, 300], cycle_sizes=[30, 90], cycle_headline=90,
             memory_size=500, payment_invoices=40, webhook_rate=20, webhook_seconds=6,
             ledger_invoices=2_000, ledger_iterations=10)


def _brief(figures: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v:.2f}" for k, v in figures.items() if isinstance(v, float))


def ratio(relance: float, bare: float) -> float:
    return relance / bare if bare else float("inf")


async def run_import(ctx: BenchContext, plan: Plan, figures: Figures) -> list[Row]:
    runs = figures.setdefault("import", {})
    for n in plan.import_sizes:
        runs[n] = {"bare": await bulk_import.bare_start(ctx, n),
                   "relance": await bulk_import.relance_import(ctx, n)}
        console.log(f"import {n}: relance {_brief(runs[n]['relance'])}; "
                    f"bare {_brief(runs[n]['bare'])}")
    n = max(plan.import_sizes)
    r, b = runs[n]["relance"], runs[n]["bare"]
    q = ratio(r["per_s"], b["per_s"])
    return [Row("1 bulk import", n, "invoices/s to last start", r["per_s"], b["per_s"], q,
                "ratio >= 0.9", q >= 0.9, {"relance": r, "bare": b})]


async def run_cycle(ctx: BenchContext, plan: Plan, figures: Figures) -> list[Row]:
    runs = figures.setdefault("cycle", {})
    for n in plan.cycle_sizes:
        relance = await cycle.relance_cycle(ctx, n)
        runs[n] = {"relance": relance,
                   "bare": await cycle.bare_cycle(ctx, n, relance["shape"])}
        console.log(f"cycle {n}: relance {_brief(relance)}; bare {_brief(runs[n]['bare'])}")
        _log_cycle_outlook(n, runs[n], [m for m in plan.cycle_sizes if m > n])
    n = plan.cycle_headline
    r, b = runs[n]["relance"], runs[n]["bare"]
    q = ratio(r["per_s"], b["per_s"])
    return [Row("2 dunning cycle", n, "cycles/s, all escalated", r["per_s"], b["per_s"], q,
                "ratio >= 0.6", q >= 0.6, {"relance": r, "bare": b,
                                            "day_seconds": cycle.DAY_SECONDS})]


def _log_cycle_outlook(n: int, run: dict[str, Any], larger: list[int]) -> None:
    """Why a large cycle run is long: past a few hundred invoices a compressed cycle
    is bound by CPU (workflow tasks, activities, server persistence), not by its
    37-day floor, so its time grows with N whatever the length of a day."""
    if not larger:
        return
    cpu = sum((run[side]["bench_cpu_s"] + run[side]["server_cpu_s"]) / n
              for side in ("relance", "bare"))
    cores = os.cpu_count() or 1
    console.log(f"cycle {n}: {cpu:.2f} CPU-s per invoice (both sides, bench + server): "
                + ", ".join(f"{m:,} needs >= {cpu * m / cores / 60:.0f} min on {cores} CPUs"
                            for m in larger))


async def run_payments(ctx: BenchContext, plan: Plan, figures: Figures) -> list[Row]:
    n = plan.payment_invoices
    load = payments.Load(plan.webhook_rate, plan.webhook_seconds)
    try:
        r = await payments.relance_payments(ctx, n, load)
    except RuntimeError as err:
        # An installation this load saturates is a result, not a crash of the suite:
        # the row says why, and the benchmarks after it still run.
        reason = str(err).split("; worker log:")[0]
        console.log(f"payments {n}: relance did not finish: {reason}")
        # No Relance history to read the shape off: the one a settled invoice shows
        # (one activity per partial payment, two on the settling one).
        b = await payments.bare_payments(ctx, n, load, {"activities_per_payment": 1,
                                                        "activities_on_close": 2})
        console.log(f"payments {n}: bare {_brief(b)}")
        return [Row("3 payment webhooks", n, "received to closed p99 ms (Relance: none "
                    "closed in 180 s)", float("nan"), b["close_p99_ms"], None, "< 500 ms",
                    False, {"error": reason, "bare": b, "rate": load.rate,
                            "seconds": load.seconds})]
    console.log(f"payments {n}: relance {_brief(r)}")
    b = await payments.bare_payments(ctx, n, load, r["shape"])
    console.log(f"payments {n}: bare {_brief(b)}")
    figures["payments"] = {"relance": r, "bare": b}
    name = "3 payment webhooks"
    detail = {"relance": r, "bare": b, "rate": load.rate, "seconds": load.seconds}

    def latency(metric: str, key: str, bar_ms: float | None) -> Row:
        q = ratio(r[key], b[key])
        return Row(name, n, metric, r[key], b[key], q,
                   f"< {bar_ms:.0f} ms" if bar_ms else "",
                   r[key] < bar_ms if bar_ms else None, detail)

    return [
        Row(name, n, f"req/s sent ({r['requests']} payments)", r["achieved_rate"],
            b["achieved_rate"], ratio(r["achieved_rate"], b["achieved_rate"]), "", None),
        latency("HTTP p50 ms (bare: signal RPC)", "http_p50_ms", None),
        latency("HTTP p99 ms (bare: signal RPC)", "http_p99_ms", 100),
        latency("received to closed p50 ms", "close_p50_ms", None),
        latency("received to closed p99 ms", "close_p99_ms", 500),
        Row(name, n, "errors", r["errors"], b["errors"], None, "0", r["errors"] == 0, detail),
        Row(name, n, "lost (payment or close)", r["lost"], b["lost"], None, "0",
            r["lost"] == 0, detail),
    ]


async def run_memory(ctx: BenchContext, plan: Plan, figures: Figures) -> list[Row]:
    n = plan.memory_size
    b = await memory.bare_memory(ctx, n)
    r = await memory.relance_memory(ctx, n)
    figures["memory"] = {"relance": r, "bare": b}
    q = ratio(r["peak_mb"], b["peak_mb"])
    return [Row("4 worker memory", n, "peak RSS MB, all waiting", r["peak_mb"], b["peak_mb"],
                q, "< 250 MB and ratio <= 1.5", r["peak_mb"] < 250 and q <= 1.5,
                {"relance": r, "bare": b})]


def _cost_rows(name: str, metric: str, runs: dict[int, Any], cost: Callable[[Any, int], float]
               ) -> list[Row]:
    sizes = sorted(runs)
    rows = [Row(name, n, metric, cost(runs[n]["relance"], n), cost(runs[n]["bare"], n),
                ratio(cost(runs[n]["relance"], n), cost(runs[n]["bare"], n)), "", None)
            for n in sizes]
    if len(sizes) > 1:
        lo, hi = sizes[0], sizes[-1]
        growth = ratio(cost(runs[hi]["relance"], hi), cost(runs[lo]["relance"], lo))
        bare_growth = ratio(cost(runs[hi]["bare"], hi), cost(runs[lo]["bare"], lo))
        rows.append(Row(name, hi, f"cost/invoice at {hi} / at {lo}", growth, bare_growth, None,
                        "Relance <= 1.3", growth <= 1.3))
    return rows


async def run_growth(ctx: BenchContext, plan: Plan, figures: Figures) -> list[Row]:
    rows: list[Row] = []
    if "import" in figures:
        rows += _cost_rows("5 growth: import", "ms/invoice (wall)", figures["import"],
                           lambda f, n: 1000 * f["seconds"] / n)
    if "cycle" in figures:
        # Wall time of a compressed cycle has a floor (the policy's 37 days), so the
        # cost of a cycle is the CPU the worker side and the server spend on it.
        rows += _cost_rows("5 growth: cycle", "CPU ms/invoice (bench+server)",
                           figures["cycle"],
                           lambda f, n: 1000 * (f["bench_cpu_s"] + f["server_cpu_s"]) / n)
    return rows


async def run_ledger(ctx: BenchContext, plan: Plan, figures: Figures) -> list[Row]:
    n, iterations = plan.ledger_invoices, plan.ledger_iterations
    runs: dict[str, Any] = figures.setdefault("ledger", {})
    with ledger_queries.sqlite_ledger(ctx.workdir) as engine:
        runs["sqlite"] = await asyncio.to_thread(ledger_queries.run_ledger, engine, n,
                                                 iterations)
    why_not = ("no server given (--postgres-url or RELANCE_BENCH_POSTGRES_URL)"
               if not plan.postgres_url else
               await asyncio.to_thread(ledger_queries.postgres_unreachable, plan.postgres_url))
    if why_not is not None or plan.postgres_url is None:
        console.log(f"6 ledger on PostgreSQL skipped: {why_not}")
    else:
        with ledger_queries.postgres_ledger(plan.postgres_url) as engine:
            runs["postgresql"] = await asyncio.to_thread(ledger_queries.run_ledger, engine, n,
                                                         iterations)
    bound = ledger_queries.entity_bound(n)
    rows: list[Row] = []
    for db, run in runs.items():
        console.log(f"ledger {db}: {n} invoices, {run['audit_rows']} audit rows loaded in "
                    f"{run['load_s']:.1f} s")
        for name, q in run["queries"].items():
            r, b = q["query"], q["count"]
            met = r["p99_ms"] < ledger_queries.BAR_MS and r["max_entities"] <= bound
            rows.append(Row(f"6 ledger: {db}", n, f"{name} p99 ms (p50 {r['p50_ms']:.1f})",
                            r["p99_ms"], b["p99_ms"], ratio(r["p99_ms"], b["p99_ms"]),
                            f"< {ledger_queries.BAR_MS:.0f} ms, <= {bound} rows loaded", met,
                            {**q, "load_s": run["load_s"], "audit_rows": run["audit_rows"],
                             "open_tasks": run["open_tasks"]}))
    return rows


@dataclass
class Benchmark:
    name: str
    run: Callable[[BenchContext, Plan, Figures], Awaitable[list[Row]]]


SUITE = [Benchmark("import", run_import), Benchmark("cycle", run_cycle),
         Benchmark("payments", run_payments),
         Benchmark("memory", run_memory), Benchmark("growth", run_growth),
         Benchmark("ledger", run_ledger)]
