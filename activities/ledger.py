"""Activities that write the workflow's progress into the ledger.

Synchronous on purpose: SQLAlchemy sessions block, so the worker runs these on a
thread pool. Each write is idempotent (unique keys), because activities retry.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine, update
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
                session.execute(
                    update(CallTask)
                    .where(CallTask.invoice_id == invoice.id)  # type: ignore[arg-type]
                    .where(CallTask.status.in_([TaskStatus.OPEN, TaskStatus.CLAIMED]))  # type: ignore[attr-defined]
                    .values(status=TaskStatus.CANCELLED)
                )
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
    def record_event(self, event: AuditInput) -> None:
        with Session(self.engine) as session:
            invoice = session.get(Invoice, event.invoice_id)
            if invoice is None:
                raise ApplicationError(f"invoice {event.invoice_id} not in ledger",
                                       non_retryable=True)
            session.add(self._event(invoice, event, datetime.now(UTC)))
            try:
                session.commit()
            except IntegrityError:
                session.rollback()  # already written by an earlier attempt

    @activity.defn
    def create_call_task(self, task: CreateCallTaskInput) -> int:
        """Open a call task for an agent; a retry returns the task already created."""
        with Session(self.engine) as session:
            existing = session.exec(
                select(CallTask).where(CallTask.invoice_id == task.invoice_id,
                                       CallTask.step_key == task.step_key)
            ).first()
            if existing is not None:
                assert existing.id is not None
                return existing.id
            invoice = session.get(Invoice, task.invoice_id)
            if invoice is None:
                raise ApplicationError(f"invoice {task.invoice_id} not in ledger",
                                       non_retryable=True)
            row = CallTask(invoice_id=task.invoice_id, customer_id=invoice.customer_id,
                           step_key=task.step_key, reason=task.reason)
            session.add(row)
            session.add(AuditEvent(invoice_id=invoice.id, customer_id=invoice.customer_id,
                                   kind="call_task_created",
                                   detail={"step": task.step_key, "reason": task.reason},
                                   dedup_key=f"invoice-{task.invoice_id}:task:{task.step_key}"))
            session.commit()
            assert row.id is not None
            return row.id

    @activity.defn
    def complete_call_task(self, outcome: CallTaskOutcomeInput) -> None:
        with Session(self.engine) as session:
            task = session.get(CallTask, outcome.task_id)
            if task is None or task.invoice_id != outcome.invoice_id:
                raise ApplicationError(f"call task {outcome.task_id} not found",
                                       non_retryable=True)
            if task.status == TaskStatus.COMPLETED:
                return  # a retry of this same completion
            task.status = TaskStatus.COMPLETED
            task.outcome = outcome.outcome
            task.notes = outcome.notes
            task.promise_date = outcome.promise_date
            task.completed_by = outcome.agent
            task.completed_at = datetime.now(UTC)
            session.add(task)
            session.add(AuditEvent(
                invoice_id=task.invoice_id, customer_id=task.customer_id,
                kind="call_task_completed", actor=outcome.agent or "agent",
                detail={"task_id": task.id, "outcome": outcome.outcome, "notes": outcome.notes,
                        "promise_date": outcome.promise_date.isoformat()
                        if outcome.promise_date else None},
            ))
            session.commit()

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
