"""Formal-notice letters in the ledger: which letter a step's invoice was sent,
storing a customer's combined letter, and the registered-post queue."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlmodel import Session, col, select

from ledger.models import (
    AuditEvent,
    Invoice,
    Letter,
    LetterInvoice,
    LetterPostalStatus,
    MessageBatch,
    MessageStatus,
    OutboxMessage,
)


def step_letters(session: Session, requests: Sequence[OutboxMessage]) -> list[Letter]:
    """The letters the invoices of these requests are sent at their step: the
    customer's combined letter covering one, else the invoice's own letter; each
    letter once, in the order stored."""
    found: dict[int, Letter] = {}
    for r in requests:
        link = session.exec(select(LetterInvoice).where(
            LetterInvoice.invoice_id == r.invoice_id, LetterInvoice.step_key == r.step_key)).first()
        letter = (session.get(Letter, link.letter_id) if link is not None else
                  session.exec(select(Letter).where(Letter.invoice_id == r.invoice_id,
                                                    Letter.step_key == r.step_key)).first())
        if letter is not None and letter.id is not None:
            found[letter.id] = letter
    return [found[i] for i in sorted(found)]


def store_combined_letter(session: Session, *, batch: MessageBatch,
                          members: Sequence[OutboxMessage], claim: dict[str, Any],
                          filename: str, pdf: bytes, sha256: str, language: str,
                          letter_date: date, deadline: date) -> Letter:
    """One letter for the registered-post batch (unique on `batch_id`), linked to
    every covered invoice, whose own letters leave the post queue; each invoice's
    trail records it. Not committed: the caller commits it with the batch."""
    letter = Letter(
        invoice_id=None, customer_id=batch.customer_id, step_key=members[0].step_key,
        batch_id=batch.id, language=language, filename=filename, pdf=pdf, sha256=sha256,
        letter_date=letter_date, deadline=deadline, principal_cents=claim["principal_cents"],
        interest_cents=claim["interest_cents"], indemnity_cents=claim["indemnity_cents"])
    session.add(letter)
    session.flush()
    numbers = [line["number"] for line in claim["invoices"]]
    for m, line in zip(members, claim["invoices"], strict=True):
        session.add(LetterInvoice(
            letter_id=letter.id or 0, invoice_id=m.invoice_id, step_key=m.step_key,
            principal_cents=line["principal_cents"], interest_cents=line["interest_cents"],
            indemnity_cents=line["indemnity_cents"]))
        own = session.exec(select(Letter).where(Letter.invoice_id == m.invoice_id,
                                                Letter.step_key == m.step_key)).first()
        if own is not None and own.postal_status == LetterPostalStatus.QUEUED:
            own.postal_status = LetterPostalStatus.SUPERSEDED
            session.add(own)
        session.add(AuditEvent(
            invoice_id=m.invoice_id, customer_id=batch.customer_id, kind="letter_combined",
            detail={"letter_id": letter.id, "batch_id": batch.id, "step": m.step_key,
                    "invoice_numbers": numbers, "filename": filename,
                    "superseded_letter_id": own.id if own is not None else None,
                    "principal_cents": line["principal_cents"],
                    "interest_cents": line["interest_cents"],
                    "indemnity_cents": line["indemnity_cents"],
                    "letter_total_cents": claim["total_cents"]},
            dedup_key=f"letter-{letter.id}:{m.invoice_id}"))
    return letter


def notice_totals(letters: Sequence[Letter]) -> dict[str, Any] | None:
    """What a step's letters claim together: what its email says they claim."""
    if not letters:
        return None
    t = {key: sum(getattr(letter, key) for letter in letters)
         for key in ("principal_cents", "interest_cents", "indemnity_cents")}
    return {**t, "total_cents": sum(t.values()), "letters": len(letters),
            "as_of": max(letter.letter_date for letter in letters)}


@dataclass
class QueuedLetter:
    letter: Letter
    invoice_numbers: list[str]


def postal_queue(session: Session) -> list[QueuedLetter]:
    """Letters to print and post as lettre recommandée avec AR: queued, and handed
    to the post queue (their registered-post send, alone or batched, went out)."""
    letters = session.exec(select(Letter).where(
        Letter.postal_status == LetterPostalStatus.QUEUED).order_by(col(Letter.id))).all()
    queue = []
    for letter in letters:
        if letter.batch_id is not None:
            batch = session.get(MessageBatch, letter.batch_id)
            sent = batch is not None and batch.status == "sent"
        else:
            row = session.get(OutboxMessage, letter.outbox_id) if letter.outbox_id else None
            sent = row is not None and row.status in (MessageStatus.SENT, MessageStatus.DELIVERED)
        if sent:
            queue.append(QueuedLetter(letter, covered_numbers(session, letter)))
    return queue


def covered_numbers(session: Session, letter: Letter) -> list[str]:
    ids = ([letter.invoice_id] if letter.invoice_id is not None else
           list(session.exec(select(LetterInvoice.invoice_id).where(
               LetterInvoice.letter_id == letter.id).order_by(col(LetterInvoice.invoice_id)))))
    return [inv.number for i in ids if (inv := session.get(Invoice, i)) is not None]
