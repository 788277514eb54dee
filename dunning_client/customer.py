"""Customer-level operations, client side: one relationship, many invoice workflows.

Each invoice keeps its own workflow and history; these fan a customer's decision
out to every open invoice (or the ones named) through the same signals and updates
an invoice-level action uses, so every invoice's timeline records it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from sqlalchemy import Engine
from sqlmodel import Session, select
from temporalio.client import Client, WorkflowUpdateFailedError

from dunning_client.start import workflow_id
from ledger.models import CallTaskInvoice, Invoice, InvoiceStatus, Payment
from workflows.dunning import CompleteCallTask, DunningWorkflow, PaymentReceived, StewardAction


@dataclass
class FanOutResult:
    done: list[int] = field(default_factory=list)
    refused: dict[int, str] = field(default_factory=dict)


async def deliver_payments(client: Client, payments: list[Payment]) -> None:
    """Signal each invoice's workflow with its own share of a split payment."""
    for p in payments:
        if p.invoice_id is not None:
            await client.get_workflow_handle(workflow_id(p.invoice_id)).signal(
                DunningWorkflow.payment_received,
                PaymentReceived(payment_id=str(p.id), amount_cents=p.amount_cents,
                                currency=p.currency))


async def complete_customer_call(client: Client, engine: Engine, task_id: int,
                                 outcome: CompleteCallTask,
                                 per_invoice: dict[int, CompleteCallTask] | None = None
                                 ) -> FanOutResult:
    """Record one call's outcome on every invoice it covers; `per_invoice` gives a
    different outcome to some of them (a promise covering only two invoices, say)."""
    with Session(engine) as session:
        invoice_ids = [link.invoice_id for link in session.exec(select(CallTaskInvoice).where(
            CallTaskInvoice.task_id == task_id, CallTaskInvoice.completed_at.is_(None)))]  # type: ignore[union-attr]
    result = FanOutResult()
    for invoice_id in invoice_ids:
        cmd = replace((per_invoice or {}).get(invoice_id, outcome), task_id=task_id)
        handle = client.get_workflow_handle(workflow_id(invoice_id))
        try:
            await handle.execute_update(DunningWorkflow.complete_call_task, cmd)
            result.done.append(invoice_id)
        except WorkflowUpdateFailedError as err:
            result.refused[invoice_id] = str(err.cause)
    return result


async def steer_customer(client: Client, engine: Engine, customer_id: int, update: str,
                         action: StewardAction) -> FanOutResult:
    """Pause, resume, open or resolve a dispute, or cancel every open invoice of a
    customer. An invoice whose workflow refuses (already paused...) is reported."""
    updates = {"pause": DunningWorkflow.pause, "resume": DunningWorkflow.resume,
               "open_dispute": DunningWorkflow.open_dispute,
               "resolve_dispute": DunningWorkflow.resolve_dispute,
               "cancel": DunningWorkflow.cancel}
    if update not in updates:
        raise ValueError(f"unknown customer action {update!r}")
    with Session(engine) as session:
        invoice_ids = [i.id or 0 for i in session.exec(select(Invoice).where(
            Invoice.customer_id == customer_id, Invoice.status == InvoiceStatus.OPEN))]
    result = FanOutResult()
    for invoice_id in invoice_ids:
        try:
            await client.get_workflow_handle(workflow_id(invoice_id)).execute_update(
                updates[update], action)
            result.done.append(invoice_id)
        except WorkflowUpdateFailedError as err:
            result.refused[invoice_id] = str(err.cause)
    return result
