"""What every benchmark shares in one run: the dev server, the ledger, the
settings both sides use, a thread pool for activities, and a run id that keeps
invoice numbers and workflow ids unique across benchmarks."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from time import perf_counter
from typing import Any

import psutil
from sqlalchemy import Engine
from temporalio.client import Client

from settings import Settings

# Workflow starts in flight at once, on both sides (`start_dunning`'s default).
START_CONCURRENCY = 100


@dataclass
class BenchContext:
    client: Client
    engine: Engine
    database_url: str
    settings: Settings
    executor: ThreadPoolExecutor
    server_pid: int
    # The run's temporary directory (the dev server's database lives there too).
    workdir: Path
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:6])

    def task_queue(self, name: str) -> str:
        return f"bench-{name}-{uuid.uuid4().hex[:8]}"

    def prefix(self, name: str) -> str:
        """Unique per call: invoice numbers and workflow ids never collide."""
        return f"{name}{self.run_id}{uuid.uuid4().hex[:6]}"

    def settings_for(self, task_queue: str, **overrides: Any) -> Settings:
        return self.settings.model_copy(update={"temporal_task_queue": task_queue, **overrides})


@dataclass
class Row:
    """One line of the table: a Relance figure beside the bare one."""

    bench: str
    size: int
    metric: str
    relance: float
    bare: float | None
    ratio: float | None
    bar: str
    met: bool | None
    detail: dict[str, Any] = field(default_factory=dict)


class CpuMeter:
    """CPU seconds used by this process and the Temporal server between start and stop."""

    def __init__(self, server_pid: int) -> None:
        self.me = psutil.Process()
        self.server = psutil.Process(server_pid)

    def _now(self) -> tuple[float, float]:
        a, b = self.me.cpu_times(), self.server.cpu_times()
        return a.user + a.system, b.user + b.system

    def __enter__(self) -> CpuMeter:
        self.start = self._now()
        self.t0 = perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        end = self._now()
        self.wall = perf_counter() - self.t0
        self.bench_cpu = end[0] - self.start[0]
        self.server_cpu = end[1] - self.start[1]


async def gather_bounded(items: list[Any], fn: Callable[[Any], Any],
                         concurrency: int = START_CONCURRENCY) -> list[Any]:
    gate = asyncio.Semaphore(concurrency)

    async def one(item: Any) -> Any:
        async with gate:
            return await fn(item)

    return await asyncio.gather(*(one(i) for i in items))
