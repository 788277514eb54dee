"""Relance's own Prometheus metrics (the Temporal SDK exports its own, see worker.py).

Counters live in prometheus_client's default registry, so one `/metrics` per
process (the API's route, the worker's port) shows them all:

- `relance_messages_total{channel,status}`: sends attempted at a provider or refused
  (sent, failed, skipped, retrying), counted in `activities/notify.py`;
- `relance_payments_applied_total{outcome}`: payments an invoice workflow applied,
  kept as unapplied cash, or rejected (counted from the ledger writes it asks for);
- `relance_payments_recorded_total{source}` and
  `relance_webhooks_rejected_total{source,reason}`: for the payment webhooks;
- `relance_call_tasks_completed_total{outcome}`;
- `relance_invoices{status,stage}`: invoices by dunning stage, read from the ledger
  at scrape time (the same numbers whichever worker moved them).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import Counter
from prometheus_client.core import REGISTRY, GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine, func
from sqlmodel import Session, select
from temporalio import activity
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor

MESSAGES = Counter("relance_messages", "Dunning messages by channel and status",
                   ["channel", "status"])
PAYMENTS_APPLIED = Counter("relance_payments_applied",
                           "Payments taken into account by invoice workflows", ["outcome"])
PAYMENTS_RECORDED = Counter("relance_payments_recorded",
                            "Payments recorded in the ledger from a gateway", ["source"])
WEBHOOKS_REJECTED = Counter("relance_webhooks_rejected",
                            "Payment webhooks refused (bad signature, bad body)",
                            ["source", "reason"])
CALL_TASKS_COMPLETED = Counter("relance_call_tasks_completed",
                               "Call tasks completed by agents", ["outcome"])

_PAYMENT_EVENTS = {"payment_applied": "applied", "payment_unapplied": "unapplied",
                   "payment_rejected": "rejected"}


def message_counted(channel: str, status: str) -> None:
    MESSAGES.labels(channel=channel, status=status).inc()


def payment_recorded(source: str) -> None:
    PAYMENTS_RECORDED.labels(source=source).inc()


def webhook_rejected(source: str, reason: str) -> None:
    WEBHOOKS_REJECTED.labels(source=source, reason=reason).inc()


class MetricsInterceptor(Interceptor):
    """Counts what finished activities wrote: payments and completed call tasks."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _ActivityMetrics(next)


class _ActivityMetrics(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        result = await super().execute_activity(input)
        kind = activity.info().activity_type
        arg = input.args[0] if input.args else None
        if kind == "record_progress":
            for event in getattr(arg, "events", []):
                if event.kind in _PAYMENT_EVENTS:
                    PAYMENTS_APPLIED.labels(outcome=_PAYMENT_EVENTS[event.kind]).inc()
        elif kind == "complete_call_task":
            CALL_TASKS_COMPLETED.labels(outcome=str(getattr(arg, "outcome", ""))).inc()
        return result


class LedgerStageCollector(Collector):
    """`relance_invoices{status,stage}` from one GROUP BY at scrape time."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from ledger.models import Invoice

        gauge = GaugeMetricFamily("relance_invoices", "Invoices by status and dunning stage",
                                  labels=["status", "stage"])
        with Session(self.engine) as session:
            rows = session.exec(select(Invoice.status, Invoice.stage, func.count())
                                .group_by(Invoice.status, Invoice.stage)).all()
        for status, stage, count in rows:
            gauge.add_metric([status, stage], count)
        yield gauge


_ledger_gauge: list[LedgerStageCollector] = []


def watch_ledger(engine: Engine) -> None:
    """Report this process's ledger in `relance_invoices` (registered once)."""
    if _ledger_gauge:
        _ledger_gauge[0].engine = engine
        return
    collector = LedgerStageCollector(engine)
    REGISTRY.register(collector)
    _ledger_gauge.append(collector)
