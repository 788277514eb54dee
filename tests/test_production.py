"""The worker started the production way (`run_worker` with production settings:
PostgreSQL, encrypted payloads, real secrets, Prometheus endpoints) runs whole
dunning cycles under the dev server, in compressed time (a policy day = 1 s)."""

from __future__ import annotations

import asyncio
import os
import secrets
import uuid
from datetime import date, timedelta

import httpx
import pytest
from sqlmodel import Session
from temporalio.api.history.v1 import History

from dunning_client.start import connect, start_dunning
from ledger.models import Invoice
from payload_codec import new_key
from settings import Settings
from tests.factories import add_invoices, audit_kinds, messages
from tests.ports import free_port
from worker import run_worker
from workflows.dunning import DunningWorkflow, PaymentReceived

PG_URL = os.environ.get("RELANCE_TEST_DATABASE_URL", "")
needs_postgres = pytest.mark.skipif(
    not PG_URL.startswith("postgresql"),
    reason="production mode needs PostgreSQL: set RELANCE_TEST_DATABASE_URL=postgresql+psycopg://...")


def production_settings(temporal_address: str, metrics_port: int) -> Settings:
    return Settings(
        environment="production", database_url=PG_URL, temporal_address=temporal_address,
        temporal_task_queue=f"relance-prod-{uuid.uuid4()}", day_seconds=1,
        codec_keys=f"2025:{new_key()},2026:{new_key()}", codec_active_key="2026",
        stripe_webhook_secret=secrets.token_urlsafe(32),
        generic_webhook_secret=secrets.token_urlsafe(32),
        codec_endpoint_token=secrets.token_urlsafe(32), log_format="json",
        worker_metrics_port=metrics_port)


@needs_postgres
async def test_production_worker_runs_full_cycles(dev_env, engine):
    settings = production_settings(dev_env.client.service_client.config.target_host,
                                   free_port())
    today = date.today()
    [escalated, paid] = [add_invoices(engine, due=today - timedelta(days=2),
                                      amounts=[250000])[0] for _ in range(2)]
    worker = asyncio.create_task(run_worker(settings))
    try:
        client = await connect(settings)
        handles = {h.id: h for h in await start_dunning(client, engine, settings,
                                                        [escalated, paid])}
        payer = handles[f"invoice-{paid}"]
        await asyncio.sleep(3)  # a few policy days into dunning
        await payer.signal(DunningWorkflow.payment_received,
                           PaymentReceived(payment_id=f"pay-{uuid.uuid4()}",
                                           amount_cents=250000))
        async with asyncio.timeout(120):
            paid_result = await payer.result()
            escalated_result = await handles[f"invoice-{escalated}"].result()
        async with httpx.AsyncClient() as http:
            scraped = (await http.get(f"http://127.0.0.1:{settings.worker_metrics_port}/"
                                      "metrics")).text
    finally:
        worker.cancel()
        with pytest.raises(asyncio.CancelledError):
            await worker
    assert paid_result.status == "paid" and paid_result.balance_cents == 0
    assert escalated_result.status == "escalated"
    assert escalated_result.steps_done == ["reminder", "sms_reminder", "call", "last_reminder",
                                           "mise_en_demeure", "escalation"]
    sent = [(m.step_key, m.channel, m.status) for m in messages(engine, escalated)]
    assert sent == [("reminder", "email", "sent"), ("sms_reminder", "sms", "sent"),
                    ("last_reminder", "email", "sent"), ("mise_en_demeure", "letter", "sent"),
                    ("mise_en_demeure", "email", "sent")]
    assert audit_kinds(engine, paid)[-1] == "dunning_closed"
    assert 'relance_messages_total{channel="letter",status="sent"}' in scraped
    # Everything the production client and worker wrote to Temporal is encrypted.
    raw = await dev_env.client.get_workflow_handle(f"invoice-{escalated}").fetch_history()
    blob = History(events=raw.events).SerializeToString()
    [started_input] = raw.events[0].workflow_execution_started_event_attributes.input.payloads
    assert started_input.metadata["encryption-key-id"] == b"2026"
    assert blob.count(b"binary/encrypted") > 10
    with Session(engine) as session:
        invoice = session.get(Invoice, escalated)
        assert invoice is not None
    assert invoice.number.encode() not in blob
