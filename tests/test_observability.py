"""Prometheus counters (Relance's and the SDK's), readiness, traces, JSON logs."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from datetime import date, timedelta

import httpx
import pytest
from fastapi.testclient import TestClient
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import REGISTRY
from temporalio import activity
from temporalio.client import Client
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.testing import ActivityEnvironment

from dunning_client.converter import relance_data_converter
from observability.logs import JsonFormatter
from observability.tracing import temporal_interceptors
from settings import get_settings
from tests.compressed import start_compact, wait_for_call_task
from tests.factories import add_invoices, new_worker, settings_for, start
from tests.ports import free_port
from worker import run_worker
from workflows.dunning import CallOutcome, CompleteCallTask, DunningWorkflow, PaymentReceived


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


COUNTED = [("relance_messages_total", {"channel": "email", "status": "sent"}, 4),
           ("relance_messages_total", {"channel": "sms", "status": "sent"}, 1),
           ("relance_messages_total", {"channel": "letter", "status": "sent"}, 1),
           ("relance_call_tasks_completed_total", {"outcome": "no_answer"}, 1),
           ("relance_payments_applied_total", {"outcome": "applied"}, 1)]


@pytest.fixture
def api_for(monkeypatch):
    """The real API app (lifespan included) on the test ledger and a Temporal server."""

    def make(database_url: str, temporal_address: str) -> TestClient:
        from api.main import app

        monkeypatch.setenv("RELANCE_DATABASE_URL", database_url)
        monkeypatch.setenv("RELANCE_TEMPORAL_ADDRESS", temporal_address)
        get_settings.cache_clear()
        return TestClient(app)

    yield make
    get_settings.cache_clear()


async def test_metrics_endpoint_counts_a_dunning_cycle(dev_env, engine, database_url, executor,
                                                       api_for):
    before = [sample(name, **labels) for name, labels, _ in COUNTED]
    settings = settings_for(database_url)
    [escalated, paid] = [add_invoices(engine, due=date.today() + timedelta(days=1),
                                      amounts=[50000])[0] for _ in range(2)]
    async with new_worker(dev_env.client, engine, settings, executor) as worker:
        handle = await start_compact(dev_env.client, engine, settings, worker.task_queue,
                                     escalated)
        task_id = await wait_for_call_task(handle)
        await handle.execute_update(DunningWorkflow.complete_call_task, CompleteCallTask(
            task_id=task_id, outcome=CallOutcome.NO_ANSWER))
        [payer] = await start(dev_env.client, engine, settings, worker, [paid])
        await payer.signal(DunningWorkflow.payment_received,
                           PaymentReceived(payment_id=f"pay-{uuid.uuid4()}", amount_cents=50000))
        assert (await payer.result()).status == "paid"
        assert (await handle.result()).status == "escalated"
    after = [sample(name, **labels) for name, labels, _ in COUNTED]
    assert [a - b for a, b in zip(after, before, strict=True)] == [n for *_, n in COUNTED]

    target = dev_env.client.service_client.config.target_host
    with api_for(database_url, target) as http:
        scraped = http.get("/metrics")
        ready = http.get("/health/ready")
    assert scraped.status_code == 200
    text = scraped.text
    assert 'relance_messages_total{channel="sms",status="sent"}' in text
    assert 'relance_call_tasks_completed_total{outcome="no_answer"}' in text
    assert 'relance_invoices{stage="escalated",status="escalated"}' in text
    assert 'relance_invoices{stage="paid",status="paid"}' in text
    assert ready.status_code == 200
    assert ready.json() == {"status": "ok", "checks": {"database": "ok", "temporal": "ok"}}


async def test_readiness_names_what_is_down(dev_env, database_url, api_for):
    with api_for(database_url, dev_env.client.service_client.config.target_host) as http:
        # Then Temporal goes away: a client to a port where nothing listens.
        http.app.state.temporal = await Client.connect(  # type: ignore[attr-defined]
            f"127.0.0.1:{free_port()}", lazy=True)
        ready = http.get("/health/ready")
    assert ready.status_code == 503
    body = ready.json()
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["temporal"].startswith("unavailable")


async def test_worker_serves_sdk_and_relance_metrics(dev_env, database_url):
    sdk_port, app_port = free_port(), free_port()
    settings = settings_for(database_url,
                            temporal_address=dev_env.client.service_client.config.target_host,
                            temporal_task_queue=f"tq-{uuid.uuid4()}",
                            temporal_metrics_address=f"127.0.0.1:{sdk_port}",
                            worker_metrics_port=app_port)
    running = asyncio.create_task(run_worker(settings))
    try:
        async with httpx.AsyncClient() as http:
            for _ in range(100):
                try:
                    sdk = await http.get(f"http://127.0.0.1:{sdk_port}/metrics")
                    own = await http.get(f"http://127.0.0.1:{app_port}/metrics")
                    if "temporal_num_pollers" in sdk.text:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.2)
    finally:
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running
    assert "temporal_num_pollers" in sdk.text
    assert f'task_queue="{settings.temporal_task_queue}"' in sdk.text
    assert "relance_messages_total" in own.text


async def test_traces_follow_a_payment_from_client_to_activities(env, engine, database_url,
                                                                 executor):
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    traced = await Client.connect(env.client.service_client.config.target_host,
                                  data_converter=relance_data_converter,
                                  interceptors=[TracingInterceptor(provider.get_tracer("t"))])
    settings = settings_for(database_url)
    [invoice_id] = add_invoices(engine, due=date.today() + timedelta(days=20), amounts=[1000])
    async with new_worker(traced, engine, settings, executor) as worker:
        [handle] = await start(traced, engine, settings, worker, [invoice_id])
        await handle.signal(DunningWorkflow.payment_received,
                            PaymentReceived(payment_id="p-1", amount_cents=1000))
        assert (await handle.result()).status == "paid"
    spans = exporter.get_finished_spans()
    names = {s.name for s in spans}
    assert {"StartWorkflow:DunningWorkflow", "SignalWorkflow:payment_received",
            "RunWorkflow:DunningWorkflow", "RunActivity:record_progress"} <= names
    assert len({s.context.trace_id for s in spans if s.name.startswith("Run")}) == 1
    assert temporal_interceptors(settings) == []  # tracing is opt-in (RELANCE_OTLP_ENDPOINT)


def test_json_logs_carry_invoice_and_workflow_ids():
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    keep = Keep()
    logger = activity.logger.logger
    level = logger.level
    logger.addHandler(keep)
    logger.setLevel(logging.INFO)
    try:
        env = ActivityEnvironment()
        env.info = env.info.__class__(**{**env.info.__dict__, "workflow_id": "invoice-42",
                                         "activity_type": "send_message"})
        env.run(lambda: activity.logger.info("message sent", extra={"channel": "sms"}))
    finally:
        logger.removeHandler(keep)
        logger.setLevel(level)
    line = json.loads(JsonFormatter().format(records[-1]))
    assert line["invoice_id"] == 42 and line["workflow_id"] == "invoice-42"
    assert line["activity_type"] == "send_message" and line["channel"] == "sms"
    assert line["message"].startswith("message sent") and line["level"] == "INFO"


async def test_worker_logs_each_activity_with_its_invoice(env, engine, database_url, executor,
                                                          caplog):
    caplog.set_level(logging.INFO, logger="temporalio.activity")
    settings = settings_for(database_url)
    [invoice_id] = add_invoices(engine, due=date.today() + timedelta(days=20), amounts=[700])
    async with new_worker(env.client, engine, settings, executor) as worker:
        [handle] = await start(env.client, engine, settings, worker, [invoice_id])
        await handle.signal(DunningWorkflow.payment_received,
                            PaymentReceived(payment_id="p-log", amount_cents=700))
        assert (await handle.result()).status == "paid"
    lines = [json.loads(JsonFormatter().format(r)) for r in caplog.records
             if r.getMessage().startswith("activity completed")]
    mine = [line for line in lines if line.get("invoice_id") == invoice_id]
    assert mine and all(line["workflow_id"] == f"invoice-{invoice_id}" for line in mine)
    assert {line["activity_type"] for line in mine} == {"record_progress"}
    assert all(isinstance(line["duration_ms"], int) and line["attempt"] == 1 for line in mine)
