"""Money in: match a gateway's payment to an invoice, commit it, then tell the
invoice's workflow. The ledger row comes first, so a payment is never lost; the
signal is retried by the reconciler until Temporal has it, and the workflow
deduplicates by payment id, so it is never counted twice."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from dunning_client.start import workflow_id
from ledger.crud import record_payment
from ledger.models import AuditEvent, Customer, Invoice, InvoiceStatus, Payment
from workflows.dunning import DunningWorkflow, PaymentReceived

log = logging.getLogger("relance.payments")


@dataclass(frozen=True)
class IncomingPayment:
    """A verified gateway notification, in ledger terms."""

    source: str
    external_id: str
    amount_cents: int
    currency: str
    invoice_ref: str | None = None
    customer_ref: str | None = None


@dataclass(frozen=True)
class StoredPayment:
    payment_id: int
    created: bool
    invoice_id: int | None
    customer_id: int | None
    matched_by: str
    signalled: bool


def match_invoice(session: Session, p: IncomingPayment) -> tuple[int | None, int | None, str]:
    """(invoice id, customer id, how): the invoice named in the metadata, else the
    customer's one open invoice of exactly that amount, else unapplied cash."""
    if p.invoice_ref:
        invoice = session.exec(select(Invoice).where(Invoice.number == p.invoice_ref)).first()
        if invoice is None and p.invoice_ref.isdigit():
            invoice = session.get(Invoice, int(p.invoice_ref))
        if invoice is not None and invoice.currency == p.currency:
            return invoice.id, invoice.customer_id, "invoice_reference"
    customer = None
    if p.customer_ref:
        customer = session.exec(select(Customer).where(Customer.ref == p.customer_ref)).first()
    if customer is None:
        return None, None, "unapplied"
    candidates = session.exec(
        select(Invoice.id).where(Invoice.customer_id == customer.id,
                                 Invoice.status == InvoiceStatus.OPEN,
                                 Invoice.currency == p.currency,
                                 Invoice.balance_cents == p.amount_cents)
        .order_by(col(Invoice.due_date), col(Invoice.id)).limit(2)
    ).all()
    if len(candidates) == 1:
        return candidates[0], customer.id, "customer_amount"
    return None, customer.id, "unapplied"


def store_payment(engine: Engine, p: IncomingPayment) -> StoredPayment:
    """Commit the payment once per (source, external id). Blocking: call in a thread."""
    with Session(engine, expire_on_commit=False) as session:
        found = session.exec(select(Payment).where(Payment.source == p.source,
                                                   Payment.external_id == p.external_id)).first()
        if found is not None:
            return _stored(found, False, "duplicate")
        invoice_id, customer_id, how = match_invoice(session, p)
        try:
            payment, created = record_payment(
                session=session, source=p.source, external_id=p.external_id,
                amount_cents=p.amount_cents, currency=p.currency, invoice_id=invoice_id,
                customer_id=customer_id)
        except IntegrityError:
            # The same event arrived concurrently and the other request won.
            session.rollback()
            payment = session.exec(select(Payment).where(
                Payment.source == p.source, Payment.external_id == p.external_id)).one()
            return _stored(payment, False, "duplicate")
        return _stored(payment, created, how)


def _stored(payment: Payment, created: bool, how: str) -> StoredPayment:
    assert payment.id is not None
    return StoredPayment(payment.id, created, payment.invoice_id, payment.customer_id, how,
                         payment.signalled_at is not None)


def _load_unsignalled(engine: Engine, payment_id: int) -> Payment | None:
    with Session(engine, expire_on_commit=False) as session:
        payment = session.get(Payment, payment_id)
        if payment is None or payment.invoice_id is None or payment.signalled_at is not None:
            return None
        return payment


def _mark_signalled(engine: Engine, payment_id: int) -> None:
    with Session(engine) as session:
        session.execute(update(Payment).where(col(Payment.id) == payment_id,
                                              col(Payment.signalled_at).is_(None))
                        .values(signalled_at=datetime.now(UTC)))
        session.commit()


def _unapply_if_closed(engine: Engine, payment_id: int, reason: str) -> bool:
    """The workflow is gone: if the ledger says the invoice is closed, the payment
    becomes unapplied cash for a human. An open invoice whose workflow is not
    started yet keeps its payment pending."""
    with Session(engine) as session:
        payment = session.get(Payment, payment_id)
        if payment is None or payment.invoice_id is None:
            return False
        invoice = session.get(Invoice, payment.invoice_id)
        if invoice is not None and invoice.status == InvoiceStatus.OPEN:
            return False
        session.add(AuditEvent(invoice_id=payment.invoice_id, customer_id=payment.customer_id,
                               kind="payment_unapplied", actor="api",
                               detail={"payment_id": payment.id,
                                       "amount_cents": payment.amount_cents,
                                       "reason": reason}))
        payment.invoice_id = None
        payment.applied_cents = 0
        payment.unapplied_cents = payment.amount_cents
        session.add(payment)
        session.commit()
        return True


async def signal_payment(engine: Engine, client: Client, payment_id: int,
                         rpc_timeout: timedelta = timedelta(seconds=5)) -> bool:
    """Give the payment to its invoice's workflow. True once Temporal has it (or it
    was turned into unapplied cash); False leaves it for the reconciler."""
    payment = await asyncio.to_thread(_load_unsignalled, engine, payment_id)
    if payment is None:
        return True
    assert payment.invoice_id is not None
    handle = client.get_workflow_handle(workflow_id(payment.invoice_id))
    try:
        await handle.signal(DunningWorkflow.payment_received,
                            PaymentReceived(payment_id=str(payment.id),
                                            amount_cents=payment.amount_cents,
                                            currency=payment.currency,
                                            received_at=payment.received_at),
                            rpc_timeout=rpc_timeout)
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return await asyncio.to_thread(_unapply_if_closed, engine, payment_id,
                                           "invoice workflow has ended")
        log.warning("payment %s not signalled yet: %s", payment_id, err)
        return False
    except (RuntimeError, TimeoutError) as err:
        # A lazy client that cannot reach the server raises RuntimeError.
        log.warning("payment %s not signalled yet: %s", payment_id, err)
        return False
    await asyncio.to_thread(_mark_signalled, engine, payment_id)
    return True


def _pending_ids(engine: Engine, limit: int, only: list[int] | None) -> list[int]:
    with Session(engine) as session:
        query = (select(Payment.id).where(col(Payment.invoice_id).is_not(None),
                                          col(Payment.signalled_at).is_(None))
                 .order_by(col(Payment.id)).limit(limit))
        if only is not None:
            query = query.where(col(Payment.id).in_(only))
        return [i for i in session.exec(query).all() if i is not None]


async def deliver_pending_payments(engine: Engine, client: Client, *, limit: int = 500,
                                   only: list[int] | None = None) -> int:
    """The reconciler: signal every committed payment Temporal has not acknowledged.
    Returns how many were delivered (or settled as unapplied) in this pass."""
    delivered = 0
    for payment_id in await asyncio.to_thread(_pending_ids, engine, limit, only):
        if await signal_payment(engine, client, payment_id):
            delivered += 1
    return delivered


async def reconcile_forever(engine: Engine, client: Client, interval_seconds: float) -> None:
    while True:
        try:
            n = await deliver_pending_payments(engine, client)
            if n:
                log.info("reconciler delivered %d payments", n)
        except Exception:  # keep the loop alive; the next pass retries
            log.exception("reconciler pass failed")
        await asyncio.sleep(interval_seconds)
