"""The mise en demeure: PDF stored once, queued for registered post, attached to the
step's email; its text carries every mandatory mention and the right amounts."""

from __future__ import annotations

import io
import re
import uuid
from datetime import UTC, date, datetime

import pytest
from pypdf import PdfReader
from sqlmodel import Session, select

from activities.notify import Creditor, NotifyActivities
from activities.payloads import SendMessageInput
from activities.providers.base import OutgoingMessage, ProviderReceipt
from activities.providers.outbox import OutboxProvider
from activities.rendering import MessageRenderer
from ledger.models import Customer, Invoice, Letter, OutboxMessage, Payment
from tests.factories import add_invoices

CREDITOR = Creditor(name="Atelier Dupont SAS", address="12 rue des Lilas, 75011 Paris",
                    email="compta@dupont.example", phone="+33 1 23 45 67 89",
                    iban="FR76 3000 6000 0112 3456 7890 189", city="Paris",
                    signatory="Marie Dupont, directrice financière",
                    legal_id="SIREN 123 456 789", pay_url_template="https://pay.example/{invoice}")


class RecordingProvider:
    """Keeps what it was asked to send (the email side of the step)."""

    def __init__(self) -> None:
        self.name = "recording"
        self.sent: list[OutgoingMessage] = []

    def send(self, message: OutgoingMessage) -> ProviderReceipt:
        self.sent.append(message)
        return ProviderReceipt(f"rec-{message.outbox_id}")


def pdf_text(pdf: bytes) -> str:
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    text = re.sub(r"Page \d+ / \d+", " ", text)  # the page footer, wherever it falls
    return re.sub(r"\s+", " ", text.replace("\u202f", " ").replace("\xa0", " "))


def notify(engine) -> tuple[NotifyActivities, RecordingProvider]:
    email = RecordingProvider()
    return NotifyActivities(engine, {"email": email, "sms": OutboxProvider(),
                                     "letter": OutboxProvider("post-queue")},
                            MessageRenderer(), CREDITOR), email


def step(invoice_id: int, channel: str, as_of: date, b2b: bool = True) -> SendMessageInput:
    return SendMessageInput(invoice_id=invoice_id, step_key="mise_en_demeure", channel=channel,
                            template="mise_en_demeure", balance_cents=0,
                            deadline_days=8 if b2b else 15, recovery_indemnity=b2b,
                            as_of=as_of)


def invoice(engine, invoice_id: int) -> tuple[Invoice, Customer]:
    with Session(engine) as session:
        inv = session.get(Invoice, invoice_id)
        assert inv is not None
        cust = session.get(Customer, inv.customer_id)
        assert cust is not None
        return inv, cust


def test_b2b_letter_stored_queued_and_attached(engine):
    [invoice_id] = add_invoices(engine, due=date(2025, 5, 31), invoice_date=date(2025, 5, 1),
                                amounts=[450000])
    activities, email = notify(engine)
    letter_result = activities.send_message(step(invoice_id, "letter", date(2025, 6, 30)))
    email_result = activities.send_message(step(invoice_id, "email", date(2025, 6, 30)))
    assert (letter_result.status, email_result.status) == ("sent", "sent")
    # A retried activity finds everything done and composes nothing again.
    assert activities.send_message(step(invoice_id, "letter", date(2025, 6, 30))).status == "sent"

    with Session(engine) as session:
        [letter] = session.exec(select(Letter).where(Letter.invoice_id == invoice_id)).all()
        post = session.get(OutboxMessage, letter_result.outbox_id)
    assert post is not None and post.provider == "post-queue" and post.status == "sent"
    assert letter.outbox_id == post.id and letter.postal_status == "queued"
    assert (letter.principal_cents, letter.interest_cents, letter.indemnity_cents) == (
        450000, 4864, 4000)
    assert letter.letter_date == date(2025, 6, 30) and letter.deadline == date(2025, 7, 8)
    assert letter.pdf.startswith(b"%PDF")

    inv, cust = invoice(engine, invoice_id)
    text = pdf_text(letter.pdf)
    for mention in [
        "Atelier Dupont SAS", "12 rue des Lilas, 75011 Paris", "SIREN 123 456 789",
        cust.name, "3 rue du Client, 69001 Lyon",
        "Lettre recommandée avec accusé de réception", "mise en demeure de payer",
        f"facture {inv.number}", "1 mai 2025", "31 mai 2025",
        # principal, interest (with rate and period), 40 EUR, total, deadline
        "4 500,00 EUR", "48,64 EUR", "40,00 EUR", "4 588,64 EUR",
        "du 1 juin 2025 au 30 juin 2025 (30 jours) au taux de 13,15 %",
        "taux de refinancement de la BCE + 10 points", "L441-10", "D441-5",
        "au plus tard le 8 juillet 2025", "IBAN FR76 3000 6000 0112 3456 7890 189",
        "https://pay.example/" + inv.number, "injonction de payer", "1343-1",
        "Paris, le 30 juin 2025", "Marie Dupont, directrice financière", "Signature",
    ]:
        assert mention in text, mention

    [sent] = email.sent
    assert [(a.filename, a.mime_type) for a in sent.attachments] == [
        (f"mise-en-demeure-{inv.number}-2025-06-30.pdf", "application/pdf")]
    assert sent.attachments[0].content == letter.pdf
    assert "Total à régler au plus tard le 8 juillet 2025 : 4 588,64 EUR" in (
        sent.body.replace("\u202f", " ").replace("\xa0", " "))
    assert sent.html is not None and "<p>" in sent.html


def test_partial_payment_is_applied_to_interest_first_on_the_letter(engine):
    [invoice_id] = add_invoices(engine, due=date(2025, 1, 31), invoice_date=date(2025, 1, 2),
                                amounts=[100000])
    inv, cust = invoice(engine, invoice_id)
    with Session(engine) as session:
        session.add(Payment(source="test", external_id=uuid.uuid4().hex, invoice_id=invoice_id,
                            customer_id=cust.id, amount_cents=50000, applied_cents=50000,
                            received_at=datetime(2025, 3, 2, 10, tzinfo=UTC)))
        session.commit()
    activities, _ = notify(engine)
    activities.send_message(step(invoice_id, "letter", date(2025, 4, 1)))
    with Session(engine) as session:
        letter = session.exec(select(Letter).where(Letter.invoice_id == invoice_id)).one()
    # 10.81 of interest paid first, so 510.81 of principal; 5.52 since; 40.00
    assert (letter.principal_cents, letter.interest_cents, letter.indemnity_cents) == (
        51081, 552, 4000)
    text = pdf_text(letter.pdf)
    for mention in ["1 000,00 EUR", "500,00 EUR", "510,81 EUR", "5,52 EUR", "556,33 EUR",
                    "du 1 février 2025 au 2 mars 2025 (30 jours) au taux de 13,15 %",
                    "du 3 mars 2025 au 1 avril 2025 (30 jours) au taux de 13,15 %"]:
        assert mention in text, mention


def test_b2c_english_letter_has_legal_rate_and_no_indemnity(engine):
    [invoice_id] = add_invoices(engine, due=date(2025, 3, 15), invoice_date=date(2025, 2, 13),
                                amounts=[123456], segment="b2c", language="en")
    activities, email = notify(engine)
    activities.send_message(step(invoice_id, "letter", date(2025, 4, 29), b2b=False))
    activities.send_message(step(invoice_id, "email", date(2025, 4, 29), b2b=False))
    with Session(engine) as session:
        letter = session.exec(select(Letter).where(Letter.invoice_id == invoice_id)).one()
    assert (letter.principal_cents, letter.interest_cents, letter.indemnity_cents) == (
        123456, 0, 0)
    inv, cust = invoice(engine, invoice_id)
    text = pdf_text(letter.pdf)
    for mention in [
        "Registered letter with acknowledgement of receipt", "mise en demeure de payer",
        "formal notice to pay", f"invoice {inv.number}", "13 February 2025", "15 March 2025",
        "1,234.56 EUR", "by 14 May 2025", "statutory rate (taux de l'intérêt légal), 3.71%",
        "from receipt of this letter", "injonction de payer", "Paris, 29 April 2025",
        cust.name, "3 rue du Client, 69001 Lyon", "Signature",
    ]:
        assert mention in text, mention
    assert "40.00 EUR" not in text and "D441-5" not in text
    assert len(email.sent[0].attachments) == 1


def test_missing_rate_is_retried_with_a_clear_error(engine):
    from temporalio.exceptions import ApplicationError

    [invoice_id] = add_invoices(engine, due=date(2026, 6, 30), amounts=[100000])
    activities, _ = notify(engine)
    with pytest.raises(ApplicationError, match="no ecb_mro rate for 2026-H2") as err:
        activities.send_message(step(invoice_id, "letter", date(2026, 7, 20)))
    assert err.value.type == "MissingRateError" and not err.value.non_retryable


def test_rate_added_by_an_administrator_is_used_at_the_next_retry(engine, tmp_path):
    from temporalio.exceptions import ApplicationError

    override = tmp_path / "rates.csv"
    override.write_text("series,half_year,rate_percent,source,compiled_on\n")
    [invoice_id] = add_invoices(engine, due=date(2026, 6, 30), amounts=[365000])
    activities = NotifyActivities(engine, {"letter": OutboxProvider("post-queue")},
                                  MessageRenderer(), CREDITOR, rates_file=str(override))
    with pytest.raises(ApplicationError, match="2026-H2"):
        activities.send_message(step(invoice_id, "letter", date(2026, 7, 5)))
    override.write_text("series,half_year,rate_percent,source,compiled_on\n"
                        "ecb_mro,2026-H2,2.00,test fixture: not a published rate,2026-11-24\n")
    assert activities.send_message(step(invoice_id, "letter", date(2026, 7, 5))).status == "sent"
    with Session(engine) as session:
        letter = session.exec(select(Letter).where(Letter.invoice_id == invoice_id)).one()
    assert letter.interest_cents == 600  # 3650.00 * 12 % * 5 / 365
    assert "au taux de 12,00 %" in pdf_text(letter.pdf)


def test_imported_partial_balance_is_the_principal(engine):
    from ledger.crud import InvoiceRow, import_invoices

    row = InvoiceRow(customer_ref=f"C-{uuid.uuid4().hex[:8]}", customer_name="Client partiel",
                     number=f"F-{uuid.uuid4().hex[:10]}", invoice_date=date(2025, 5, 1),
                     due_date=date(2025, 5, 31), amount_cents=450000, balance_cents=300000,
                     email="ap@client.example", address="1 rue du Test, 75001 Paris")
    with Session(engine) as session:
        [invoice_id] = import_invoices(session=session, rows=[row]).open_invoice_ids
    activities, _ = notify(engine)
    activities.send_message(step(invoice_id, "letter", date(2025, 6, 30)))
    with Session(engine) as session:
        letter = session.exec(select(Letter).where(Letter.invoice_id == invoice_id)).one()
    # 3000.00 * 13.15 % * 30 / 365 = 32.42
    assert (letter.principal_cents, letter.interest_cents, letter.indemnity_cents) == (
        300000, 3242, 4000)
    assert "1 500,00 EUR" in pdf_text(letter.pdf)  # already paid
