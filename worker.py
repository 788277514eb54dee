"""The Relance worker: builds the clients once, registers the workflow and the
bound activity methods, and polls the dunning task queue."""

from __future__ import annotations

import asyncio
import compileall
import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from prometheus_client import start_http_server
from sqlalchemy import Engine
from temporalio.client import Client
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.worker import Worker

from activities.ledger import LedgerActivities
from activities.notify import Creditor, NotifyActivities
from activities.providers.base import MessageProvider
from activities.providers.outbox import OutboxProvider
from activities.rendering import MessageRenderer
from dunning_client.start import connect
from ledger.db import make_engine
from observability.logs import ActivityLogInterceptor
from observability.metrics import MetricsInterceptor
from settings import Settings, get_settings
from workflows.dunning import DunningWorkflow

log = logging.getLogger("relance.worker")


def build_providers(settings: Settings) -> dict[str, MessageProvider]:
    # Each SDK is imported only when configured: a worker without SendGrid or
    # Twilio does not carry them (tens of megabytes, benchmark 4).
    providers: dict[str, MessageProvider] = {
        "email": OutboxProvider("outbox"),
        "sms": OutboxProvider("outbox"),
        # Letters are queued for registered post: printed from the outbox.
        "letter": OutboxProvider("post-queue"),
    }
    if settings.email_provider == "sendgrid":
        from activities.providers.sendgrid_email import SendGridEmailProvider

        providers["email"] = SendGridEmailProvider(
            settings.sendgrid_api_key, from_email=settings.email_from,
            from_name=settings.email_from_name or settings.company_name,
            reply_to=settings.email_reply_to or settings.company_email,
            base_url=settings.sendgrid_base_url)
    if settings.sms_provider == "twilio":
        from activities.providers.twilio_sms import TwilioSmsProvider

        callback = (f"{settings.public_base_url.rstrip('/')}/webhooks/twilio/status"
                    if settings.public_base_url else "")
        providers["sms"] = TwilioSmsProvider(
            settings.twilio_account_sid, settings.twilio_auth_token,
            from_number=settings.sms_from, status_callback_url=callback,
            base_url=settings.twilio_base_url)
    return providers


def build_notify(engine: Engine, settings: Settings,
                 providers: dict[str, MessageProvider] | None = None) -> NotifyActivities:
    """Messages and letters as the settings describe the creditor (worker and preview)."""
    return NotifyActivities(
        engine, build_providers(settings) if providers is None else providers,
        MessageRenderer(Path(settings.templates_dir) if settings.templates_dir else None),
        Creditor(name=settings.company_name, address=settings.company_address,
                 email=settings.company_email, phone=settings.company_phone,
                 iban=settings.company_iban, pay_url_template=settings.pay_url_template,
                 city=settings.company_city, signatory=settings.company_signatory,
                 legal_id=settings.company_legal_id),
        rates_file=settings.rates_file,
    )


def cache_workflow_bytecode() -> None:
    """The sandbox imports the workflow modules afresh for every workflow it loads.
    Where nothing writes bytecode (PYTHONDONTWRITEBYTECODE=1, as on this machine and
    in many images) each of those imports compiled the source again: 30 % of the
    worker's busy samples in one py-spy profile of benchmark 3. Compile them once."""
    root = Path(__file__).resolve().parent
    for package in ("workflows", "rules"):
        if not compileall.compile_dir(root / package, quiet=2):
            logging.getLogger(__name__).warning(
                "could not cache the bytecode of %s/ (read-only?): every workflow "
                "loaded compiles it again", package)


def build_worker(client: Client, engine: Engine, settings: Settings,
                 executor: ThreadPoolExecutor, task_queue: str | None = None,
                 providers: dict[str, MessageProvider] | None = None) -> Worker:
    cache_workflow_bytecode()
    ledger = LedgerActivities(engine)
    notify = build_notify(engine, settings, providers)
    return Worker(
        client,
        task_queue=task_queue or settings.temporal_task_queue,
        workflows=[DunningWorkflow],
        activities=[
            ledger.record_progress, ledger.create_call_task,
            ledger.complete_call_task, ledger.store_payment_plan, ledger.mark_recipient,
            notify.send_message, notify.enqueue_message, notify.dispatch_message,
            notify.withdraw_message,
        ],
        activity_executor=executor,
        max_concurrent_activities=settings.max_concurrent_activities,
        max_concurrent_workflow_tasks=settings.max_concurrent_workflow_tasks,
        max_cached_workflows=settings.max_cached_workflows,
        interceptors=[MetricsInterceptor(), ActivityLogInterceptor()],
    )


def metrics_runtime(settings: Settings) -> Runtime | None:
    """The Temporal SDK's own metrics (task latencies, slots, polls) for Prometheus."""
    if not settings.temporal_metrics_address:
        return None
    return Runtime(telemetry=TelemetryConfig(
        metrics=PrometheusConfig(bind_address=settings.temporal_metrics_address)))


async def run_worker(settings: Settings | None = None) -> None:
    settings = settings or get_settings()
    client = await connect(settings, metrics_runtime(settings))
    if settings.worker_metrics_port:
        start_http_server(settings.worker_metrics_port)
    engine = make_engine(settings.database_url)
    with ThreadPoolExecutor(max_workers=settings.max_concurrent_activities) as executor:
        worker = build_worker(client, engine, settings, executor)
        log.info("worker polling %s on %s", settings.temporal_task_queue,
                 settings.temporal_address)
        await worker.run()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    asyncio.run(run_worker())
