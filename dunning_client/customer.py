"""Customer-level operations, client side: one relationship, many invoice workflows.

Each invoice keeps its own workflow and history; these fan a customer's decision
out to every open invoice (or the ones named) through the same signals and updates
an invoice-level action uses, so every invoice's timeline records it. A workflow
that refuses (its validator, or it has ended) is reported, never retried here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, select
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError, FailureError
from temporalio.service import RPCError, RPCStatusCode

from activities.payloads import Instalment
from dunning_client.start import workflow_id
from ledger.models import CallTaskInvoice, Invoice, InvoiceStatus, Payment
from workflows.dunning import (
    CompleteCallTask,
    DunningWorkflow,
    PaymentPlanAgreed,
    PaymentReceived,
    StewardAction,
)

STEERING = {"pause": DunningWorkflow.pause, "resume": DunningWorkflow.resume,
            "open_dispute": DunningWorkflow.open_dispute,
            "resolve_dispute": DunningWorkflow.resolve_dispute,
            "cancel": DunningWorkflow.cancel}

UNAVAILABLE = "Temporal unavailable"


@dataclass
class FanOutResult:
    done: list[int] = field(default_factory=list)
    refused: dict[int, str] = field(default_factory=dict)
    # The invoice's stage once its workflow took the update.
    stages: dict[int, str] = field(default_factory=dict)

    @property
    def unavailable(self) -> bool:
        """Temporal could not be reached for any invoice (nothing was done)."""
        return not self.done and bool(self.refused) and all(
            r.startswith(UNAVAILABLE) for r in self.refused.values())


def update_refusal(err: WorkflowUpdateFailedError) -> str:
    """The workflow's own words for a rejected or failed update."""
    cause = err.cause
    if isinstance(cause, ApplicationError | FailureError):
        return cause.message
    return str(cause or err)


async def update_each(client: Client, calls: Sequence[tuple[int, Any, Any]],
                      rpc_timeout: float = 5.0) -> FanOutResult:
    """Run (invoice id, update, argument) on each invoice's workflow in turn."""
    result = FanOutResult()
    for invoice_id, update, arg in calls:
        handle = client.get_workflow_handle(workflow_id(invoice_id))
        try:
            ack = await handle.execute_update(update, arg,
                                              rpc_timeout=timedelta(seconds=rpc_timeout))
        except WorkflowUpdateFailedError as err:
            result.refused[invoice_id] = update_refusal(err)
            continue
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                result.refused[invoice_id] = f"{UNAVAILABLE}: {err.message}"
            else:
                result.refused[invoice_id] = (f"invoice {invoice_id} has no running dunning "
                                              "workflow (it has ended or never started)")
            continue
        except (RuntimeError, TimeoutError) as err:
            result.refused[invoice_id] = f"{UNAVAILABLE}: {err}"
            continue
        result.done.append(invoice_id)
        result.stages[invoice_id] = getattr(ack, "stage", "")
    return result


async def deliver_payments(client: Client, payments: list[Payment]) -> None:
    """Signal each invoice's workflow with its own share of a split payment."""
    for p in payments:
        if p.invoice_id is not None:
            await client.get_workflow_handle(workflow_id(p.invoice_id)).signal(
                DunningWorkflow.payment_received,
                PaymentReceived(payment_id=str(p.id), amount_cents=p.amount_cents,
                                currency=p.currency))


def covered_invoices(engine: Engine, task_id: int) -> list[int]:
    """The invoices a call task still covers (their part not completed yet)."""
    with Session(engine) as session:
        return [link.invoice_id for link in session.exec(select(CallTaskInvoice).where(
            CallTaskInvoice.task_id == task_id,
            CallTaskInvoice.completed_at.is_(None))  # type: ignore[union-attr]
            .order_by(CallTaskInvoice.invoice_id))]  # type: ignore[arg-type]


async def complete_customer_call(client: Client, engine: Engine, task_id: int,
                                 outcome: CompleteCallTask,
                                 per_invoice: dict[int, CompleteCallTask] | None = None,
                                 rpc_timeout: float = 5.0) -> FanOutResult:
    """Record one call's outcome on every invoice it covers; `per_invoice` gives a
    different outcome to some of them (a promise covering only two invoices, say)."""
    return await update_each(client, [
        (invoice_id, DunningWorkflow.complete_call_task,
         replace((per_invoice or {}).get(invoice_id, outcome), task_id=task_id))
        for invoice_id in covered_invoices(engine, task_id)], rpc_timeout)


def open_invoice_ids(engine: Engine, customer_id: int) -> list[int]:
    with Session(engine) as session:
        return [i.id or 0 for i in session.exec(select(Invoice).where(
            Invoice.customer_id == customer_id, Invoice.status == InvoiceStatus.OPEN)
            .order_by(Invoice.id))]  # type: ignore[arg-type]


async def steer_customer(client: Client, engine: Engine, customer_id: int, update: str,
                         action: StewardAction, rpc_timeout: float = 5.0) -> FanOutResult:
    """Pause, resume, open or resolve a dispute, or cancel every open invoice of a
    customer. An invoice whose workflow refuses (already paused...) is reported."""
    if update not in STEERING:
        raise ValueError(f"unknown customer action {update!r}")
    return await update_each(client, [
        (invoice_id, STEERING[update], action)
        for invoice_id in open_invoice_ids(engine, customer_id)], rpc_timeout)


async def agree_customer_plan(client: Client, plans: dict[int, list[Instalment]],
                              agreed_by: str | None, rpc_timeout: float = 5.0) -> FanOutResult:
    """Give each invoice its part of a customer's payment plan (`rules.payment_plan`)."""
    return await update_each(client, [
        (invoice_id, DunningWorkflow.agree_payment_plan, PaymentPlanAgreed(instalments, agreed_by))
        for invoice_id, instalments in plans.items()], rpc_timeout)
