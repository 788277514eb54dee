"""`relance purge`: closed invoices lose their personal data, keep amounts and facts."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import update
from sqlmodel import Session, col, select
from typer.testing import CliRunner

from activities.ledger import LedgerActivities
from activities.notify import Creditor, NotifyActivities
from activities.payloads import (
    AuditInput,
    CallTaskOutcomeInput,
    CreateCallTaskInput,
    InvoiceProgress,
    SendMessageInput,
)
from activities.rendering import MessageRenderer
from cli import app
from ledger.models import AuditEvent, CallTask, Customer, Invoice, OutboxMessage, utcnow
from ledger.retention import REDACTED, purge_personal_data
from settings import get_settings
from tests.factories import add_invoices, settings_for
from worker import build_providers

PHONE = "+33698765432"
EMAIL = "compta@debiteur.example"


def close(engine, invoice_id: int, status: str, days_ago: int) -> None:
    LedgerActivities(engine).record_progress(InvoiceProgress(
        invoice_id=invoice_id, status=status, stage=status, balance_cents=0, closed=True,
        events=[AuditInput(invoice_id, "dunning_closed", {"status": status, "balance_cents": 0},
                           dedup_key=f"test-close-{invoice_id}")]))
    with Session(engine) as session:
        session.execute(update(Invoice).where(col(Invoice.id) == invoice_id)
                        .values(closed_at=utcnow() - timedelta(days=days_ago)))
        session.commit()


def dun(engine, database_url, invoice_id: int) -> None:
    """What a cycle leaves in the ledger: a message, a call task with notes."""
    settings = settings_for(database_url)
    notify = NotifyActivities(engine, build_providers(settings), MessageRenderer(),
                              Creditor(name="Relance Demo SAS", iban="FR76 0000"))
    assert notify.send_message(SendMessageInput(invoice_id, "reminder", "email", "reminder",
                                                balance_cents=120000)).status == "sent"
    ledger = LedgerActivities(engine)
    task_id = ledger.create_call_task(CreateCallTaskInput(invoice_id, "call", "policy step"))
    ledger.complete_call_task(CallTaskOutcomeInput(invoice_id, task_id, "no_answer",
                                                   notes=f"rappeler au {PHONE}"))


def test_purge_anonymises_old_closed_invoices_and_then_their_customer(engine, database_url,
                                                                      monkeypatch):
    old, recent = add_invoices(engine, due=date.today() - timedelta(days=500),
                               amounts=[120000, 80000], email=EMAIL, phone=PHONE)
    for invoice_id in (old, recent):
        dun(engine, database_url, invoice_id)
    close(engine, old, "paid", days_ago=400)
    close(engine, recent, "cancelled", days_ago=10)

    report = purge_personal_data(engine, older_than_days=365)
    assert report.invoices >= 1 and report.customers == 0
    with Session(engine) as session:
        [msg] = session.exec(select(OutboxMessage).where(OutboxMessage.invoice_id == old)).all()
        assert (msg.recipient, msg.subject, msg.body) == (None, None, "")
        assert (msg.channel, msg.status, msg.step_key) == ("email", "sent", "reminder")
        assert msg.sent_at is not None
        events = session.exec(select(AuditEvent).where(AuditEvent.invoice_id == old)
                              .order_by(col(AuditEvent.id))).all()
        kinds = [e.kind for e in events]
        assert kinds[-1] == "personal_data_purged"
        assert {"invoice_imported", "message_sent", "call_task_created",
                "call_task_completed", "dunning_closed"} <= set(kinds)
        sent = next(e for e in events if e.kind == "message_sent")
        assert sent.detail["recipient"] == REDACTED and sent.detail["text"] == REDACTED
        assert sent.detail["channel"] == "email" and sent.detail["status"] == "sent"
        completed = next(e for e in events if e.kind == "call_task_completed")
        assert completed.detail["notes"] == REDACTED and completed.detail["outcome"] == (
            "no_answer")
        created = next(e for e in events if e.kind == "call_task_created")
        assert created.detail["reason"] == "policy step"  # a fact, not personal
        assert all(PHONE not in str(e.detail) and EMAIL not in str(e.detail) for e in events)
        task = session.exec(select(CallTask).where(CallTask.invoice_id == old)).one()
        assert task.notes is None and task.outcome == "no_answer"
        invoice = session.get(Invoice, old)
        assert invoice is not None
        assert (invoice.amount_cents, invoice.balance_cents, invoice.status) == (120000, 0,
                                                                                 "paid")
        # The recent invoice and the customer (who has it) are untouched.
        [kept] = session.exec(select(OutboxMessage)
                              .where(OutboxMessage.invoice_id == recent)).all()
        assert kept.recipient == EMAIL and PHONE not in kept.body
        customer = session.get(Customer, invoice.customer_id)
        assert customer is not None and customer.email == EMAIL

    # The CLI, with a shorter period: the other invoice and then the customer go.
    monkeypatch.setenv("RELANCE_DATABASE_URL", database_url)
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        first = runner.invoke(app, ["purge", "--older-than-days", "5"])
        again = runner.invoke(app, ["purge", "--older-than-days", "5"])
    finally:
        get_settings.cache_clear()
    assert first.exit_code == 0, first.output
    said, said_again = (" ".join(r.output.split()) for r in (first, again))
    assert "1 invoices anonymised: 1 messages, 2 audit details, 1 call notes" in said
    assert "1 customers anonymised" in said
    assert "0 invoices anonymised" in said_again and "0 customers anonymised" in said_again
    with Session(engine) as session:
        customer = session.get(Customer, invoice.customer_id)
        assert customer is not None
        assert (customer.name, customer.email, customer.phone, customer.address) == (
            REDACTED, None, None, None)
        assert customer.ref.startswith("C-") and customer.do_not_contact
        [msg] = session.exec(select(OutboxMessage)
                             .where(OutboxMessage.invoice_id == recent)).all()
        assert msg.recipient is None and msg.body == ""
        assert session.get(Invoice, recent).amount_cents == 80000  # type: ignore[union-attr]


def test_purge_refuses_a_negative_period(engine):
    with pytest.raises(ValueError, match="zero or more"):
        purge_personal_data(engine, older_than_days=-1)
