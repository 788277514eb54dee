"""The real SendGrid and Twilio SDKs against local stand-ins of their REST APIs:
exact payloads, and errors classified (invalid recipient permanent, 429/5xx
transient honouring Retry-After)."""

from __future__ import annotations

import base64
from datetime import date
from urllib.parse import parse_qs

import pytest
from temporalio.exceptions import ApplicationError

from activities.notify import Creditor, NotifyActivities
from activities.payloads import SendMessageInput
from activities.providers.base import (
    Attachment,
    OutgoingMessage,
    PermanentSendError,
    TransientSendError,
)
from activities.providers.sendgrid_email import SendGridEmailProvider
from activities.providers.twilio_sms import TwilioSmsProvider
from activities.rendering import MessageRenderer
from tests.factories import add_invoices, messages, settings_for
from tests.standins import sendgrid_standin, twilio_standin
from worker import build_providers

EMAIL = OutgoingMessage(
    outbox_id=7, channel="email", recipient="ap@client.example", body="Bonjour,\n",
    subject="Facture F-1 échue", html="<p>Bonjour,</p>",
    metadata={"invoice_id": "42", "step": "reminder", "outbox_id": "7"},
    attachments=[Attachment("mise-en-demeure-F-1.pdf", b"%PDF-1.7 test")])
SMS = OutgoingMessage(outbox_id=8, channel="sms", recipient="+33612345678",
                      body="Dupont : la facture F-1 est échue.")


def sendgrid(url: str) -> SendGridEmailProvider:
    return SendGridEmailProvider("SG.test-key", from_email="relance@dupont.example",
                                 from_name="Atelier Dupont", reply_to="compta@dupont.example",
                                 base_url=url)


def twilio(url: str) -> TwilioSmsProvider:
    return TwilioSmsProvider("AC0001", "auth-token", from_number="+33100000000",
                             status_callback_url="https://relance.example/webhooks/twilio/status",
                             base_url=url)


def test_sendgrid_mail_send_payload():
    with sendgrid_standin() as api:
        receipt = sendgrid(api.url).send(EMAIL)
    [request] = api.requests
    assert (request.method, request.path) == ("POST", "/v3/mail/send")
    assert request.headers["Authorization"] == "Bearer SG.test-key"
    assert request.json() == {
        "from": {"email": "relance@dupont.example", "name": "Atelier Dupont"},
        "reply_to": {"email": "compta@dupont.example"},
        "subject": "Facture F-1 échue",
        "personalizations": [{"to": [{"email": "ap@client.example"}]}],
        "content": [{"type": "text/plain", "value": "Bonjour,\n"},
                    {"type": "text/html", "value": "<p>Bonjour,</p>"}],
        "attachments": [{"content": base64.b64encode(b"%PDF-1.7 test").decode(),
                         "filename": "mise-en-demeure-F-1.pdf", "type": "application/pdf",
                         "disposition": "attachment"}],
        "custom_args": {"invoice_id": "42", "step": "reminder", "outbox_id": "7"},
    }
    assert receipt.provider_id == "sg-msg-0001"


def test_sendgrid_invalid_recipient_is_permanent():
    with sendgrid_standin() as api:
        api.reply(400, {"errors": [{"message": "Does not contain a valid address.",
                                    "field": "personalizations.0.to.0.email"}]})
        with pytest.raises(PermanentSendError, match="valid address"):
            sendgrid(api.url).send(EMAIL)


@pytest.mark.parametrize(("status", "headers", "retry_after"),
                         [(429, {"Retry-After": "30"}, 30.0), (503, {}, None)])
def test_sendgrid_rate_limit_and_outage_are_transient(status, headers, retry_after):
    with sendgrid_standin() as api:
        api.reply(status, {"errors": [{"message": "slow down"}]}, headers)
        with pytest.raises(TransientSendError) as err:
            sendgrid(api.url).send(EMAIL)
    assert err.value.retry_after_seconds == retry_after


def test_twilio_message_create_payload():
    with twilio_standin() as api:
        receipt = twilio(api.url).send(SMS)
    [request] = api.requests
    assert (request.method, request.path) == ("POST", "/2010-04-01/Accounts/AC0001/Messages.json")
    assert request.headers["Authorization"] == "Basic " + base64.b64encode(
        b"AC0001:auth-token").decode()
    assert parse_qs(request.body.decode()) == {
        "To": ["+33612345678"], "From": ["+33100000000"],
        "Body": ["Dupont : la facture F-1 est échue."],
        "StatusCallback": ["https://relance.example/webhooks/twilio/status"]}
    assert receipt.provider_id == "SM0123456789abcdef0123456789abcdef"


def test_twilio_invalid_number_is_permanent():
    with twilio_standin() as api:
        api.reply(400, {"code": 21211, "status": 400,
                        "message": "The 'To' number +3361 is not a valid phone number."})
        with pytest.raises(PermanentSendError, match="21211"):
            twilio(api.url).send(SMS)


def test_twilio_429_honours_retry_after():
    with twilio_standin() as api:
        api.reply(429, {"code": 20429, "status": 429, "message": "Too Many Requests"},
                  {"Retry-After": "17"})
        with pytest.raises(TransientSendError) as err:
            twilio(api.url).send(SMS)
    assert err.value.retry_after_seconds == 17.0


def test_settings_choose_providers_and_the_letter_goes_to_sendgrid(engine, database_url):
    """Through NotifyActivities: the mise en demeure email carries its PDF and the
    custom args; a 429 becomes a retryable activity error with Retry-After's delay."""
    [invoice_id] = add_invoices(engine, due=date(2025, 5, 31), amounts=[450000])
    with sendgrid_standin() as api, twilio_standin() as sms_api:
        settings = settings_for(database_url, email_provider="sendgrid",
                                sendgrid_api_key="SG.k", sendgrid_base_url=api.url,
                                sms_provider="twilio", twilio_account_sid="AC1",
                                twilio_auth_token="t", twilio_base_url=sms_api.url,
                                public_base_url="https://relance.example")
        providers = build_providers(settings)
        assert (providers["email"].name, providers["sms"].name) == ("sendgrid", "twilio")
        notify = NotifyActivities(engine, providers, MessageRenderer(), Creditor(name="Dupont"))
        msg = SendMessageInput(invoice_id=invoice_id, step_key="mise_en_demeure",
                               channel="email", template="mise_en_demeure",
                               deadline_days=8, as_of=date(2025, 6, 30))
        api.reply(429, {"errors": [{"message": "rate limited"}]}, {"Retry-After": "12"})
        with pytest.raises(ApplicationError) as err:
            notify.send_message(msg)
        assert err.value.type == "TransientSendError" and not err.value.non_retryable
        assert err.value.next_retry_delay is not None
        assert err.value.next_retry_delay.total_seconds() == 12
        result = notify.send_message(msg)
        sms = notify.send_message(SendMessageInput(invoice_id=invoice_id, step_key="sms_reminder",
                                                   channel="sms", template="sms_reminder"))
    assert (result.status, result.provider_id, sms.status) == ("sent", "sg-msg-0001", "sent")
    payload = api.requests[-1].json()
    [attachment] = payload["attachments"]
    assert base64.b64decode(attachment["content"]).startswith(b"%PDF")
    outbox_id = str(result.outbox_id)
    assert payload["custom_args"] == {"invoice_id": str(invoice_id), "step": "mise_en_demeure",
                                      "outbox_id": outbox_id}
    assert [(m.channel, m.provider, m.attempts) for m in messages(engine, invoice_id)] == [
        ("email", "sendgrid", 2), ("sms", "twilio", 1)]
    assert parse_qs(sms_api.requests[0].body.decode())["StatusCallback"] == [
        "https://relance.example/webhooks/twilio/status"]
