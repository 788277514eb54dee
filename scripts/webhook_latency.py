"""Measure webhook-to-workflow-closed latency on this machine: a Temporal dev
server, one worker, the API served by uvicorn on 127.0.0.1, a SQLite ledger.
For each invoice: POST a signed payment to /webhooks/payments, then wait for the
invoice's workflow to return `paid`.

    .venv/bin/python scripts/webhook_latency.py [count]
"""

from __future__ import annotations

import asyncio
import json
import socket
import statistics
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import uvicorn
from sqlmodel import Session
from temporalio.testing import WorkflowEnvironment

from dunning_client.converter import relance_data_converter

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from api.main import create_app  # noqa: E402
from api.signatures import sign  # noqa: E402
from dunning_client.start import register_search_attributes  # noqa: E402
from ledger.db import make_engine, migrate  # noqa: E402
from ledger.models import Invoice  # noqa: E402
from settings import Settings  # noqa: E402
from tests.factories import add_invoices, new_worker, start  # noqa: E402


async def main(count: int) -> None:
    db = Path(tempfile.mkdtemp()) / "relance.db"
    url = f"sqlite:///{db}"
    migrate(url)
    engine = make_engine(url)
    binary = str(Path(sys.executable).parent / "temporal")
    env = await WorkflowEnvironment.start_local(dev_server_existing_path=binary, ui=False,
                                                data_converter=relance_data_converter)
    await register_search_attributes(env.client, "default")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = Settings(database_url=url, environment="test", generic_webhook_secret="s",
                        temporal_address=env.client.service_client.config.target_host,
                        reconcile_interval_seconds=0)
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port,
                                           log_level="warning"))
    serving = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.05)
    today = datetime.now(UTC).date()
    ids = add_invoices(engine, due=today + timedelta(days=30), amounts=[10000] * count)
    acks, closes = [], []
    with ThreadPoolExecutor(20) as executor:
        async with new_worker(env.client, engine, settings, executor) as worker:
            handles = await start(env.client, engine, settings, worker, ids)
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
                for invoice_id, handle in zip(ids, handles, strict=True):
                    with Session(engine) as session:
                        found = session.get(Invoice, invoice_id)
                        assert found is not None
                        number = found.number
                    body = json.dumps({"event_id": f"lat-{uuid.uuid4().hex}", "amount": "100.00",
                                       "currency": "EUR", "invoice_number": number}).encode()
                    t0 = time.perf_counter()
                    r = await http.post("/webhooks/payments", content=body,
                                        headers={"Relance-Signature": sign(body, "s"),
                                                 "Content-Type": "application/json"})
                    t1 = time.perf_counter()
                    result = await handle.result()
                    t2 = time.perf_counter()
                    assert r.status_code == 200 and r.json()["signalled"], r.text
                    assert result.status == "paid"
                    acks.append((t1 - t0) * 1000)
                    closes.append((t2 - t0) * 1000)
    server.should_exit = True
    await serving
    await env.shutdown()

    def summary(xs: list[float]) -> str:
        xs = sorted(xs)
        return (f"median {statistics.median(xs):.0f} ms, p95 {xs[int(0.95 * (len(xs) - 1))]:.0f}"
                f" ms, max {xs[-1]:.0f} ms")

    print(f"{count} payments, sequential")  # noqa: T201
    print(f"webhook 200 OK (payment committed + signalled): {summary(acks)}")  # noqa: T201
    print(f"webhook sent -> workflow closed paid:         {summary(closes)}")  # noqa: T201


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 30))
