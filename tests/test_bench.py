"""The benchmark suite runs end to end at its smallest sizes, so it never rots:
its own dev server and ledger, every benchmark whose bar does not need a
compressed 37-day cycle (benchmark 2 has a 37-second floor at day_seconds=1, run
by `python -m bench --quick`), the table and the JSON file."""

from __future__ import annotations

import json

import pytest

from bench.__main__ import main

pytestmark = pytest.mark.bench


def test_bench_quick_runs_and_writes_figures(tmp_path):
    rows = main(["--quick", "--only", "import,memory,growth", "--import-sizes", "20,40",
                 "--memory-size", "30", "--results-dir", str(tmp_path)])
    by_bench = {(r.bench, r.size, r.metric): r for r in rows}
    imported = by_bench[("1 bulk import", 40, "invoices/s to last start")]
    assert imported.relance > 0 and imported.bare and imported.bare > 0
    memory = next(r for r in rows if r.bench == "4 worker memory")
    # A Python worker is tens of MB; a figure outside this range is a broken probe.
    assert 20 < memory.relance < 4000 and memory.bare and 20 < memory.bare < 4000
    assert [r.size for r in rows if r.bench == "5 growth: import"] == [20, 40, 40]
    [written] = tmp_path.glob("*-quick.json")
    doc = json.loads(written.read_text())
    assert doc["machine"]["cpu_count"] and doc["machine"]["temporalio"]
    assert len(doc["rows"]) == len(rows)
