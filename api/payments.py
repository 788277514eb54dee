"""Money in: match a gateway's payment to an invoice, commit it, then tell the
invoice's workflow. The ledger row comes first, so a payment is never lost; the
signal is retried by the reconciler until Temporal has it, and the workflow
deduplicates by payment id, so it is never counted twice."""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, func, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from dunning_client.start import workflow_id
from ledger.crud import record_payment, split_customer_payment, split_parts
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
    # Words of the remittance text (or metadata): the invoice numbers among them
    # name the invoices a transfer pays.
    references: tuple[str, ...] = ()


@dataclass(frozen=True)
class StoredPart:
    """One ledger row of a payment: an invoice's share, or unapplied cash."""

    payment_id: int
    invoice_id: int | None
    invoice_number: str | None
    amount_cents: int
    currency: str
    signalled: bool


@dataclass(frozen=True)
class StoredPayment:
    created: bool
    customer_id: int | None
    matched_by: str
    parts: tuple[StoredPart, ...]


_WORDS = re.compile(r"[^\s,;]+")


def remittance_words(text: str | None) -> tuple[str, ...]:
    """The words of a remittance text, any of which may be an invoice number
    ("VIR ACME F-2026-0042, F-2026-0043")."""
    return tuple(dict.fromkeys(_WORDS.findall(text or "")))[:100]


@dataclass(frozen=True)
class Route:
    """Where a payment goes: one invoice, split over a customer, or unapplied."""

    how: str  # invoice_reference | split | unapplied
    invoice_id: int | None = None
    customer_id: int | None = None


def route_payment(session: Session, p: IncomingPayment) -> Route:
    """The one invoice a payment names goes to it (as before); several invoices
    of one customer named in the remittance, or a payment on a known customer that
    names no invoice, is split across the customer's open invoices
    (`rules.allocation`); anything else is unapplied cash for a human."""
    customer = None
    if p.customer_ref:
        customer = session.exec(select(Customer).where(Customer.ref == p.customer_ref)).first()
    # Case-insensitive, as rules.allocation matches them ("f-2026-0042" in a remittance).
    names = {w.upper() for w in ((p.invoice_ref,) if p.invoice_ref else ()) + p.references}
    named: list[Invoice] = list(session.exec(select(Invoice).where(
        func.upper(Invoice.number).in_(names), Invoice.currency == p.currency))) if names else []
    if not named and p.invoice_ref and p.invoice_ref.isdigit():
        by_id = session.get(Invoice, int(p.invoice_ref))
        if by_id is not None and by_id.currency == p.currency:
            named = [by_id]
    if customer is not None and len(named) > 1:
        named = [i for i in named if i.customer_id == customer.id]
    if len(named) == 1:
        return Route("invoice_reference", named[0].id, named[0].customer_id)
    if len(named) > 1 and len({i.customer_id for i in named}) == 1:
        return Route("split", customer_id=named[0].customer_id)
    if customer is not None and not named:
        return Route("split", customer_id=customer.id)
    return Route("unapplied", customer_id=customer.id if customer else None)


def store_payment(engine: Engine, p: IncomingPayment) -> StoredPayment:
    """Commit the payment once per (source, external id), as one row or as the
    parts of a split. Blocking: call in a thread."""
    with Session(engine, expire_on_commit=False) as session:
        found = _recorded(session, p)
        if found:
            return _stored(session, found, False, "duplicate")
        route = route_payment(session, p)
        try:
            if route.how == "split":
                assert route.customer_id is not None
                split = split_customer_payment(
                    session=session, source=p.source, external_id=p.external_id,
                    customer_id=route.customer_id, amount_cents=p.amount_cents,
                    currency=p.currency, references=list(p.references) +
                    ([p.invoice_ref] if p.invoice_ref else []))
                how = "unapplied" if split.rule == "none" else split.rule
                return _stored(session, split.payments, split.created, how)
            payment, created = record_payment(
                session=session, source=p.source, external_id=p.external_id,
                amount_cents=p.amount_cents, currency=p.currency, invoice_id=route.invoice_id,
                customer_id=route.customer_id)
        except IntegrityError:
            # The same event arrived concurrently and the other request won.
            session.rollback()
            return _stored(session, _recorded(session, p), False, "duplicate")
        return _stored(session, [payment], created, route.how)


def _recorded(session: Session, p: IncomingPayment) -> list[Payment]:
    found = session.exec(select(Payment).where(Payment.source == p.source,
                                               Payment.external_id == p.external_id)).first()
    if found is not None:
        return [found]
    return split_parts(session=session, source=p.source, external_id=p.external_id)


def _stored(session: Session, payments: list[Payment], created: bool, how: str) -> StoredPayment:
    ids = [p.invoice_id for p in payments if p.invoice_id is not None]
    numbers = dict(session.exec(select(Invoice.id, Invoice.number).where(
        col(Invoice.id).in_(ids))).all()) if ids else {}
    parts = tuple(StoredPart(p.id or 0, p.invoice_id, numbers.get(p.invoice_id),
                             p.amount_cents, p.currency, p.signalled_at is not None)
                  for p in payments)
    return StoredPayment(created, payments[0].customer_id if payments else None, how, parts)


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


async def accept_payment(engine: Engine, client: Client, p: IncomingPayment,
                         rpc_timeout: timedelta = timedelta(seconds=5)) -> StoredPayment:
    """Commit the payment (or find it again), then give each invoice's workflow its
    own part; a part Temporal did not take is left to the reconciler."""
    stored = await asyncio.to_thread(store_payment, engine, p)
    parts = []
    for part in stored.parts:
        if part.invoice_id is not None and not part.signalled:
            part = replace(part, signalled=await signal_payment(engine, client,
                                                                part.payment_id, rpc_timeout))
        parts.append(part)
    return replace(stored, parts=tuple(parts))


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
