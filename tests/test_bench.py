"""The benchmark suite runs end to end at its smallest sizes, so it never rots:
its own dev server and ledger, every benchmark whose bar does not need a
compressed 37-day cycle (benchmark 2 has a 37-second floor at day_seconds=1, run
by `python -m bench --quick`), the table and the JSON file."""

from __future__ import annotations

import json
import os

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


def test_bench_payments_and_ledger_quick(tmp_path):
    """Benchmark 3 through the real API and worker processes, benchmark 6 on SQLite
    (and on the suite's PostgreSQL when it has one): nothing lost, no error, no
    report loading more rows than it shows. Latencies are printed, not asserted."""
    url = os.environ.get("RELANCE_TEST_DATABASE_URL", "")
    postgres = ["--postgres-url", url] if url.startswith("postgresql") else []
    rows = main(["--quick", "--only", "payments,ledger", "--payment-invoices", "10",
                 "--webhook-rate", "10", "--webhook-seconds", "3", "--ledger-invoices", "500",
                 "--results-dir", str(tmp_path), *postgres])
    paid = {r.metric: r for r in rows if r.bench == "3 payment webhooks"}
    assert paid["errors"].relance == 0 and paid["lost (payment or close)"].relance == 0
    assert paid["lost (payment or close)"].bare == 0
    detail = paid["errors"].detail
    assert detail["relance"]["payments_recorded"] == 30 and detail["relance"]["parts"] == 3
    assert detail["relance"]["workflows_closed"] == 10 == detail["bare"]["workflows_closed"]
    databases = {r.bench for r in rows if r.bench.startswith("6 ledger")}
    assert databases == {"6 ledger: sqlite"} | ({"6 ledger: postgresql"} if postgres else set())
    for r in rows:
        if r.bench.startswith("6 ledger"):
            assert r.detail["query"]["max_entities"] <= 100, r.metric
            assert r.relance > 0 and r.bare is not None and r.bare > 0
