"""One conversation per customer: the outbox requests of a customer on one channel
in one sending window become one MessageBatch, the message actually sent.

Exactly-once by construction, at the outbox:
- a request joins a batch only while its `batch_id` is NULL (one conditional
  UPDATE), so it is in exactly one message, never alone *and* in a group;
- a batch is unique on (customer, channel, window, seq) and committed with its
  members and rendered text before any provider call;
- only the holder of the batch's lease calls the provider; a retry after a crash
  finds the batch and sends it once its lease has expired, never a second batch.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from ledger.models import MessageBatch, MessageStatus, OutboxMessage

LEASE = timedelta(seconds=60)


def claim_batch(session: Session, row: OutboxMessage) -> tuple[MessageBatch, list[OutboxMessage]]:
    """The batch `row` belongs to, creating it (with every pending request of the
    same customer, channel and window) if `row` is not claimed yet. Commits."""
    while True:
        session.refresh(row)
        if row.batch_id is not None:
            batch = session.get(MessageBatch, row.batch_id)
            assert batch is not None
            return batch, members(session, batch)
        seq = session.exec(select(func.max(MessageBatch.seq)).where(
            MessageBatch.customer_id == row.customer_id, MessageBatch.channel == row.channel,
            MessageBatch.window == row.window)).one() or 0
        batch = MessageBatch(customer_id=row.customer_id, channel=row.channel,
                             window=row.window or "", seq=seq + 1, recipient=row.recipient)
        session.add(batch)
        try:
            session.flush()
        except IntegrityError:
            session.rollback()  # a concurrent request opened this batch: look again
            continue
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.customer_id == row.customer_id,  # type: ignore[arg-type]
                   OutboxMessage.channel == row.channel,  # type: ignore[arg-type]
                   OutboxMessage.window == row.window,  # type: ignore[arg-type]
                   OutboxMessage.status == MessageStatus.PENDING,  # type: ignore[arg-type]
                   OutboxMessage.batch_id.is_(None))  # type: ignore[union-attr]
            .values(batch_id=batch.id)
        )
        claimed = members(session, batch)
        if row.id not in {m.id for m in claimed}:
            session.rollback()  # taken by a batch committed meanwhile
            continue
        batch.invoice_ids = [m.invoice_id for m in claimed]
        batch.tone = max(m.tone for m in claimed)
        return batch, claimed


def members(session: Session, batch: MessageBatch) -> list[OutboxMessage]:
    return list(session.exec(select(OutboxMessage).where(
        OutboxMessage.batch_id == batch.id).order_by(OutboxMessage.invoice_id)))  # type: ignore[arg-type]


def take_lease(session: Session, batch: MessageBatch) -> bool:
    """True when this attempt may call the provider for `batch`."""
    now = datetime.now(UTC)
    result = session.execute(
        update(MessageBatch)
        .where(MessageBatch.id == batch.id,  # type: ignore[arg-type]
               MessageBatch.status == "sending",  # type: ignore[arg-type]
               or_(MessageBatch.lease_until.is_(None),  # type: ignore[union-attr]
                   MessageBatch.lease_until < now))  # type: ignore[arg-type, operator]
        .values(lease_until=now + LEASE, attempts=MessageBatch.attempts + 1)
    )
    session.commit()
    return bool(result.rowcount)  # type: ignore[attr-defined]
