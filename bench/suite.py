"""The benchmarks of one run, in order, and the sizes of each mode.

Each benchmark is a `Benchmark(name, run)` whose `run(ctx, plan, figures)` returns
table rows and may read what earlier benchmarks left in `figures` (growth reads
the import and cycle runs). Benchmarks 3 (payment webhooks) and 6 (ledger queries)
join the list as modules of their own once the API and the reports exist."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console

from bench import bulk_import, cycle, memory
from bench.context import BenchContext, Row

console = Console(width=132)

Figures = dict[str, Any]


@dataclass
class Plan:
    import_sizes: list[int]
    cycle_sizes: list[int]
    cycle_headline: int
    memory_size: int
    only: set[str] = field(default_factory=set)


FULL = Plan(import_sizes=[1000, 2000, 5000, 10_000], cycle_sizes=[1000, 2000, 5000, 10_000],
            cycle_headline=2000, memory_size=10_000)
QUICK = Plan(import_sizes=[100, 300], cycle_sizes=[30, 90], cycle_headline=90,
             memory_size=500)


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
    n = plan.cycle_headline
    r, b = runs[n]["relance"], runs[n]["bare"]
    q = ratio(r["per_s"], b["per_s"])
    return [Row("2 dunning cycle", n, "cycles/s, all escalated", r["per_s"], b["per_s"], q,
                "ratio >= 0.6", q >= 0.6, {"relance": r, "bare": b,
                                            "day_seconds": cycle.DAY_SECONDS})]


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


@dataclass
class Benchmark:
    name: str
    run: Callable[[BenchContext, Plan, Figures], Awaitable[list[Row]]]


SUITE = [Benchmark("import", run_import), Benchmark("cycle", run_cycle),
         Benchmark("memory", run_memory), Benchmark("growth", run_growth)]
