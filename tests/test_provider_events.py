"""Provider webhooks, signed as SendGrid and Twilio sign them, verified with their
own helpers: a hard bounce invalidates the address, STOP/ARRET opts out of SMS,
delivered reports update the outbox; a bad signature changes nothing."""

from __future__ import annotations

import base64
import json
from datetime import date

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session, select
from twilio.request_validator import RequestValidator

from activities.notify import Creditor, NotifyActivities
from activities.payloads import SendMessageInput
from activities.providers.outbox import OutboxProvider
from activities.rendering import MessageRenderer
from api.routes import provider_events
from ledger.models import AuditEvent, Customer, Invoice, OutboxMessage
from tests.factories import add_invoices, settings_for

PUBLIC = "https://relance.example"
TOKEN = "twilio-auth-token"
KEY = ec.generate_private_key(ec.SECP256R1())
PUBLIC_KEY = base64.b64encode(KEY.public_key().public_bytes(
    serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).decode()


@pytest.fixture
def api(engine, database_url) -> TestClient:
    app = FastAPI()
    app.include_router(provider_events.router)
    app.state.engine = engine
    app.state.settings = settings_for(database_url, sendgrid_webhook_public_key=PUBLIC_KEY,
                                      twilio_auth_token=TOKEN, public_base_url=PUBLIC)
    return TestClient(app)


def sent(engine, channel: str, phone: str = "+33612345678") -> tuple[OutboxMessage, int]:
    [invoice_id] = add_invoices(engine, due=date(2025, 5, 31), amounts=[10000], phone=phone)
    outbox = OutboxProvider()
    notify = NotifyActivities(engine, {"email": outbox, "sms": outbox}, MessageRenderer(),
                              Creditor(name="Dupont"))
    result = notify.send_message(SendMessageInput(
        invoice_id=invoice_id, step_key="reminder" if channel == "email" else "sms_reminder",
        channel=channel, template="reminder" if channel == "email" else "sms_reminder"))
    with Session(engine) as session:
        row = session.get(OutboxMessage, result.outbox_id)
        assert row is not None
        return row, invoice_id


def customer_of(engine, invoice_id: int) -> Customer:
    with Session(engine) as session:
        invoice = session.get(Invoice, invoice_id)
        assert invoice is not None
        customer = session.get(Customer, invoice.customer_id)
        assert customer is not None
        return customer


def outbox_status(engine, outbox_id: int | None) -> str:
    with Session(engine) as session:
        row = session.get(OutboxMessage, outbox_id)
        assert row is not None
        return row.status


def audit(engine, customer_id: int | None, kind: str) -> list[AuditEvent]:
    with Session(engine) as session:
        return list(session.exec(select(AuditEvent).where(
            AuditEvent.customer_id == customer_id, AuditEvent.kind == kind)))


def post_sendgrid(api: TestClient, events: list[dict], *, key=KEY):
    payload = json.dumps(events)
    timestamp = "1764000000"
    signature = base64.b64encode(key.sign((timestamp + payload).encode(),
                                          ec.ECDSA(hashes.SHA256()))).decode()
    return api.post("/webhooks/sendgrid/events", content=payload, headers={
        "X-Twilio-Email-Event-Webhook-Signature": signature,
        "X-Twilio-Email-Event-Webhook-Timestamp": timestamp,
        "Content-Type": "application/json"})


def post_twilio(api: TestClient, path: str, params: dict[str, str], token: str = TOKEN):
    signature = RequestValidator(token).compute_signature(PUBLIC + path, params)
    return api.post(path, data=params, headers={"X-Twilio-Signature": signature})


def test_sendgrid_delivered_then_hard_bounce(api, engine):
    row, invoice_id = sent(engine, "email")
    delivered = {"event": "delivered", "email": row.recipient, "outbox_id": str(row.id),
                 "invoice_id": str(invoice_id), "step": "reminder", "sg_event_id": f"d-{row.id}"}
    assert post_sendgrid(api, [delivered]).status_code == 200
    assert outbox_status(engine, row.id) == "delivered"

    row2, invoice2 = sent(engine, "email")
    bounce = {"event": "bounce", "type": "bounce", "email": row2.recipient,
              "reason": "550 5.1.1 user unknown", "outbox_id": str(row2.id),
              "sg_event_id": f"b-{row2.id}"}
    assert post_sendgrid(api, [bounce, bounce]).status_code == 200  # retried delivery
    customer = customer_of(engine, invoice2)
    assert customer.email_invalid and outbox_status(engine, row2.id) == "failed"
    [event] = audit(engine, customer.id, "email_bounced")
    assert event.detail["reason"] == "550 5.1.1 user unknown" and event.actor == "provider"


def test_sendgrid_soft_block_does_not_invalidate(api, engine):
    row, invoice_id = sent(engine, "email")
    blocked = {"event": "bounce", "type": "blocked", "outbox_id": str(row.id),
               "sg_event_id": f"k-{row.id}", "reason": "mailbox full"}
    assert post_sendgrid(api, [blocked]).status_code == 200
    assert not customer_of(engine, invoice_id).email_invalid


def test_sendgrid_bad_signature_changes_nothing(api, engine):
    row, invoice_id = sent(engine, "email")
    forged = ec.generate_private_key(ec.SECP256R1())
    bounce = {"event": "bounce", "type": "bounce", "outbox_id": str(row.id)}
    assert post_sendgrid(api, [bounce], key=forged).status_code == 403
    assert not customer_of(engine, invoice_id).email_invalid
    assert outbox_status(engine, row.id) == "sent"


def test_twilio_status_delivered_and_unreachable(api, engine):
    row, _ = sent(engine, "sms")
    with Session(engine) as session:
        stored = session.get(OutboxMessage, row.id)
        assert stored is not None
        stored.provider_id = f"SM{row.id:032d}"
        session.add(stored)
        session.commit()
    response = post_twilio(api, "/webhooks/twilio/status",
                           {"MessageSid": f"SM{row.id:032d}", "MessageStatus": "delivered",
                            "AccountSid": "AC1"})
    assert response.status_code == 200, response.text
    assert outbox_status(engine, row.id) == "delivered"


def test_twilio_stop_reply_opts_out_and_is_honoured(api, engine):
    phone = "+33 6 99 88 77 66"
    row, invoice_id = sent(engine, "email", phone=phone)
    response = post_twilio(api, "/webhooks/twilio/inbound",
                           {"From": "+33699887766", "Body": " Arrêt ", "MessageSid": "SMin1"})
    assert response.status_code == 200 and "<Response>" in response.text
    customer = customer_of(engine, invoice_id)
    assert customer.sms_opt_out
    [event] = audit(engine, customer.id, "sms_opt_out")
    assert event.detail == {"from": "+33699887766", "reply": "Arrêt", "message_sid": "SMin1"}
    # The next SMS step is refused, and the workflow falls back to email.
    notify = NotifyActivities(engine, {"sms": OutboxProvider()}, MessageRenderer(), Creditor())
    result = notify.send_message(SendMessageInput(invoice_id=invoice_id, step_key="sms_reminder",
                                                  channel="sms", template="sms_reminder"))
    assert (result.status, result.recipient_unusable) == ("failed", True)


def test_twilio_other_reply_and_bad_signature_change_nothing(api, engine):
    row, invoice_id = sent(engine, "email", phone="+33611223344")
    assert post_twilio(api, "/webhooks/twilio/inbound",
                       {"From": "+33611223344", "Body": "Je paie demain", "MessageSid": "SMa"}
                       ).status_code == 200
    assert post_twilio(api, "/webhooks/twilio/inbound",
                       {"From": "+33611223344", "Body": "STOP", "MessageSid": "SMb"},
                       token="wrong-token").status_code == 403
    assert not customer_of(engine, invoice_id).sms_opt_out
