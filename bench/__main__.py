"""`python -m bench [--quick]`: start a Temporal dev server and a SQLite ledger of
the bench's own, run every benchmark, print one table, write it as JSON."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from time import perf_counter

from rich.console import Console

from bench.context import BenchContext, Row
from bench.report import RESULTS_DIR, machine, print_table, write_json
from bench.server import dev_server
from bench.suite import FULL, QUICK, SUITE, Plan
from ledger.db import make_engine, migrate
from settings import Settings

console = Console(width=132)
TEST_RATES = Path(__file__).resolve().parent.parent / "tests" / "data" / "rates-test-fixture.csv"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--quick", action="store_true", help="small sizes (CI, about 2 minutes)")
    p.add_argument("--import-sizes", type=_sizes, help="e.g. 1000,2000,5000,10000")
    p.add_argument("--cycle-sizes", type=_sizes, help="e.g. 1000,2000; the headline is "
                   "the 2,000 run (full) or the largest")
    p.add_argument("--memory-size", type=int, help="waiting workflows held by the worker")
    p.add_argument("--payment-invoices", type=int,
                   help="invoices waiting mid-cycle for the payment webhooks")
    p.add_argument("--webhook-rate", type=float, help="payment webhooks per second")
    p.add_argument("--webhook-seconds", type=float, help="how long the webhooks are sent")
    p.add_argument("--ledger-invoices", type=int,
                   help="invoices of the ledger benchmark (three audit rows each)")
    p.add_argument("--postgres-url", default=os.environ.get("RELANCE_BENCH_POSTGRES_URL"),
                   help="PostgreSQL for the ledger benchmark, e.g. postgresql+psycopg://"
                        "postgres@127.0.0.1:5432/relance_bench (default: "
                        "RELANCE_BENCH_POSTGRES_URL; unset or unreachable: skipped)")
    p.add_argument("--only", type=lambda s: set(s.split(",")), default=set(),
                   help=f"comma-separated subset of {','.join(b.name for b in SUITE)}")
    p.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    return p.parse_args(argv)


def _sizes(text: str) -> list[int]:
    sizes = [int(s) for s in text.split(",") if s.strip()]
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError("sizes are positive integers, e.g. 1000,2000")
    return sizes


def plan_for(args: argparse.Namespace) -> Plan:
    plan = QUICK if args.quick else FULL
    cycle_sizes = args.cycle_sizes or plan.cycle_sizes
    headline = plan.cycle_headline if plan.cycle_headline in cycle_sizes else max(cycle_sizes)
    unknown = args.only - {b.name for b in SUITE}
    if unknown:
        raise SystemExit(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    return replace(plan, import_sizes=args.import_sizes or plan.import_sizes,
                   cycle_sizes=cycle_sizes, cycle_headline=headline,
                   memory_size=args.memory_size or plan.memory_size,
                   payment_invoices=args.payment_invoices or plan.payment_invoices,
                   webhook_rate=args.webhook_rate or plan.webhook_rate,
                   webhook_seconds=args.webhook_seconds or plan.webhook_seconds,
                   ledger_invoices=args.ledger_invoices or plan.ledger_invoices,
                   postgres_url=args.postgres_url, only=args.only)


async def run(plan: Plan, mode: str, results_dir: Path) -> tuple[list[Row], Path]:
    t0 = perf_counter()
    # The packaged rate table holds published rates only and a formal notice never
    # guesses one, so a compressed cycle reaching the letter step after the last
    # published half-year would retry forever: use the labelled test fixture, as
    # the tests do, unless RELANCE_RATES_FILE names a real one.
    settings = Settings(environment="test", rates_file=os.environ.get("RELANCE_RATES_FILE")
                        or str(TEST_RATES))
    async with dev_server(settings) as server:
        database_url = f"sqlite:///{server.workdir / 'ledger.db'}"
        migrate(database_url)
        engine = make_engine(database_url)
        settings = settings.model_copy(update={"temporal_address": server.address,
                                               "database_url": database_url})
        rows: list[Row] = []
        figures: dict[str, object] = {}
        with ThreadPoolExecutor(max_workers=settings.max_concurrent_activities) as executor:
            ctx = BenchContext(client=server.client, engine=engine, database_url=database_url,
                               settings=settings, executor=executor,
                               server_pid=server.pid, workdir=server.workdir)
            for bench in SUITE:
                if plan.only and bench.name not in plan.only:
                    continue
                console.log(f"benchmark {bench.name}")
                rows += await bench.run(ctx, plan, figures)
        engine.dispose()
    seconds = perf_counter() - t0
    m = machine()
    print_table(rows, f"Relance vs bare Temporal ({mode}, {m['cpu_count']} CPU, "
                      f"temporalio {m['temporalio']}, {seconds:.0f} s)", console)
    path = write_json(rows, mode, seconds, results_dir)
    console.print(f"figures written to {path}")
    return rows, path


def main(argv: list[str] | None = None) -> list[Row]:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    plan = plan_for(args)
    rows, _ = asyncio.run(run(plan, "quick" if args.quick else "full", args.results_dir))
    return rows


if __name__ == "__main__":
    main(sys.argv[1:])
    # temporalio's native runtime may abort at interpreter exit (sdk-python
    # issue 300); the figures are written, so leave now.
    sys.stdout.flush()
    os._exit(0)
