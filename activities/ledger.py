"""Activities that write the workflow's progress into the ledger.

Synchronous on purpose: SQLAlchemy sessions block, so the worker runs these on a
thread pool. Each write is idempotent (unique keys), because activities retry.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.payloads import (
    AuditInput,
    CallTaskOutcomeInput,
    CreateCallTaskInput,
    InvoiceProgress,
    MarkRecipientInput,
    StorePaymentPlanInput,
)
from ledger.models import (
    AuditEvent,
    CallTask,
    CallTaskInvoice,
    Customer,
    Instalment,
    Invoice,
    Payment,
    PaymentPlan,
    TaskStatus,
)


class LedgerActivities:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @activity.defn
    def record_progress(self, progress: InvoiceProgress) -> None:
        """Mirror the workflow's state and its new audit events, in one transaction."""
        now = datetime.now(UTC)
        with Session(self.engine) as session:
            invoice = session.get(Invoice, progress.invoice_id)
            if invoice is None:
                raise ApplicationError(f"invoice {progress.invoice_id} not in ledger",
                                       non_retryable=True)
            invoice.status = progress.status
            invoice.stage = progress.stage
            invoice.balance_cents = progress.balance_cents
            invoice.next_action = progress.next_action
            invoice.next_action_at = progress.next_action_at
            if progress.closed and invoice.closed_at is None:
                invoice.closed_at = now
                self._release_call_tasks(session, invoice, now)
            known = set(
                session.exec(
                    select(AuditEvent.dedup_key).where(
                        AuditEvent.dedup_key.in_([e.dedup_key for e in progress.events])  # type: ignore[union-attr]
                    )
                )
            ) if progress.events else set()
            for event in progress.events:
                if event.dedup_key in known:
                    continue
                session.add(self._event(invoice, event, now))
                if event.kind in ("payment_applied", "payment_unapplied"):
                    self._settle_payment(session, event)
            session.commit()

    def _release_call_tasks(self, session: Session, invoice: Invoice, now: datetime) -> None:
        """A closed invoice needs no call; the customer's task stays for the others."""
        open_links = session.exec(select(CallTaskInvoice).where(
            CallTaskInvoice.invoice_id == invoice.id,
            CallTaskInvoice.completed_at.is_(None))).all()  # type: ignore[union-attr]
        for link in open_links:
            link.outcome, link.completed_at = "invoice_closed", now
            session.add(link)
        session.flush()
        for task_id in {link.task_id for link in open_links}:
            task = session.get(CallTask, task_id)
            if task is not None and task.status in (TaskStatus.OPEN, TaskStatus.CLAIMED):
                self._settle_task(session, task, now)

    @staticmethod
    def _event(invoice: Invoice, event: AuditInput, now: datetime) -> AuditEvent:
        return AuditEvent(invoice_id=invoice.id, customer_id=invoice.customer_id, kind=event.kind,
                          actor=event.actor, detail=event.detail,
                          dedup_key=event.dedup_key or None, at=now)

    @staticmethod
    def _settle_payment(session: Session, event: AuditInput) -> None:
        """Record how much of a payment the workflow applied and how much is left over."""
        payment_id = event.detail.get("payment_id", "")
        if not str(payment_id).isdigit():
            return
        payment = session.get(Payment, int(payment_id))
        if payment is None:
            return
        if event.kind == "payment_applied":
            payment.applied_cents = int(event.detail["applied_cents"])
            payment.unapplied_cents = int(event.detail["unapplied_cents"])
        else:
            payment.applied_cents = 0
            payment.unapplied_cents = payment.amount_cents
        session.add(payment)

    @activity.defn
    def create_call_task(self, task: CreateCallTaskInput) -> int:
        """Put the invoice on its customer's open call task (one call for all the
        customer's invoices), opening one if there is none. Idempotent."""
        with Session(self.engine) as session:
            invoice = session.get(Invoice, task.invoice_id)
            if invoice is None:
                raise ApplicationError(f"invoice {task.invoice_id} not in ledger",
                                       non_retryable=True)
            for _ in range(5):
                link = session.exec(select(CallTaskInvoice).where(
                    CallTaskInvoice.invoice_id == task.invoice_id,
                    CallTaskInvoice.step_key == task.step_key)).first()
                if link is not None:
                    return link.task_id
                call = session.exec(select(CallTask).where(
                    CallTask.customer_id == invoice.customer_id,
                    CallTask.status.in_([TaskStatus.OPEN, TaskStatus.CLAIMED]))  # type: ignore[attr-defined]
                ).first()
                joined = call is not None
                try:
                    if call is None:
                        call = CallTask(invoice_id=task.invoice_id,
                                        customer_id=invoice.customer_id,
                                        step_key=task.step_key, reason=task.reason)
                        session.add(call)
                        session.flush()
                    assert call.id is not None
                    session.add(CallTaskInvoice(task_id=call.id, invoice_id=task.invoice_id,
                                                step_key=task.step_key))
                    session.add(AuditEvent(
                        invoice_id=invoice.id, customer_id=invoice.customer_id,
                        kind="call_task_created",
                        detail={"task_id": call.id, "step": task.step_key, "reason": task.reason,
                                "joined_customer_task": joined},
                        dedup_key=f"invoice-{task.invoice_id}:task:{task.step_key}"))
                    session.commit()
                    return call.id
                except IntegrityError:
                    session.rollback()  # a concurrent invoice of this customer won: join it
            raise ApplicationError("could not open a call task (contention)")

    @activity.defn
    def complete_call_task(self, outcome: CallTaskOutcomeInput) -> None:
        """Record the call's outcome for one covered invoice; the task is completed
        once every invoice it covers has its outcome."""
        now = datetime.now(UTC)
        with Session(self.engine) as session:
            task = session.get(CallTask, outcome.task_id)
            link = session.exec(select(CallTaskInvoice).where(
                CallTaskInvoice.task_id == outcome.task_id,
                CallTaskInvoice.invoice_id == outcome.invoice_id)).first()
            if task is None or link is None:
                raise ApplicationError(
                    f"call task {outcome.task_id} does not cover invoice {outcome.invoice_id}",
                    non_retryable=True)
            if link.completed_at is not None:
                return  # a retry of this same completion
            link.outcome, link.completed_at = outcome.outcome, now
            session.add(link)
            task.notes = outcome.notes or task.notes
            task.promise_date = outcome.promise_date or task.promise_date
            task.completed_by = outcome.agent
            session.add(task)
            session.add(AuditEvent(
                invoice_id=outcome.invoice_id, customer_id=task.customer_id,
                kind="call_task_completed", actor=outcome.agent or "agent",
                detail={"task_id": task.id, "outcome": outcome.outcome, "notes": outcome.notes,
                        "promise_date": outcome.promise_date.isoformat()
                        if outcome.promise_date else None},
            ))
            session.flush()
            self._settle_task(session, task, now)
            session.commit()

    @staticmethod
    def _settle_task(session: Session, task: CallTask, now: datetime) -> None:
        links = session.exec(select(CallTaskInvoice).where(
            CallTaskInvoice.task_id == task.id)).all()
        if any(link.completed_at is None for link in links):
            return
        outcomes = {link.outcome for link in links if link.outcome != "invoice_closed"}
        if not outcomes:
            task.status = TaskStatus.CANCELLED
        else:
            task.status = TaskStatus.COMPLETED
            task.outcome = outcomes.pop() if len(outcomes) == 1 else "mixed"
            task.completed_at = now
        session.add(task)

    @activity.defn
    def store_payment_plan(self, plan: StorePaymentPlanInput) -> int:
        key = f"invoice-{plan.invoice_id}:payment_plan"
        with Session(self.engine) as session:
            done = session.exec(select(AuditEvent).where(AuditEvent.dedup_key == key)).first()
            if done is not None:
                return int(done.detail["plan_id"])
            invoice = session.get(Invoice, plan.invoice_id)
            if invoice is None:
                raise ApplicationError(f"invoice {plan.invoice_id} not in ledger",
                                       non_retryable=True)
            row = PaymentPlan(invoice_id=plan.invoice_id, agreed_by=plan.agreed_by)
            session.add(row)
            session.flush()
            assert row.id is not None
            for i in plan.instalments:
                session.add(Instalment(plan_id=row.id, due_date=i.due_date,
                                       amount_cents=i.amount_cents))
            session.add(AuditEvent(
                invoice_id=invoice.id, customer_id=invoice.customer_id,
                kind="payment_plan_agreed", actor=plan.agreed_by or "agent", dedup_key=key,
                detail={"plan_id": row.id, "instalments": [
                    {"due_date": i.due_date.isoformat(), "amount_cents": i.amount_cents}
                    for i in plan.instalments]},
            ))
            session.commit()
            return row.id

    @activity.defn
    def mark_recipient(self, mark: MarkRecipientInput) -> None:
        with Session(self.engine) as session:
            invoice = session.get(Invoice, mark.customer_invoice_id)
            customer = session.get(Customer, invoice.customer_id) if invoice else None
            if customer is None:
                return
            if mark.flag == "phone_invalid" or mark.flag == "sms_opt_out":
                customer.sms_opt_out = True
            elif mark.flag == "email_invalid":
                customer.email_invalid = True
            session.add(customer)
            session.commit()
