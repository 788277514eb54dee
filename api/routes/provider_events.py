"""Provider webhooks: SendGrid's Event Webhook and Twilio's status and inbound-SMS
callbacks, each verified with the provider's own helper before anything is read.

A request whose signature does not verify gets 403 and changes nothing.
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, HTTPException, Request, Response
from sendgrid.helpers.eventwebhook import EventWebhook
from sendgrid.helpers.eventwebhook.eventwebhook_header import EventWebhookHeader
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from twilio.request_validator import RequestValidator

from ledger.provider_events import record_email_event, record_inbound_sms, record_sms_status
from settings import Settings

router = APIRouter(prefix="/webhooks", tags=["provider events"])
log = logging.getLogger("relance.provider_events")
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


@router.post("/sendgrid/events")
async def sendgrid_events(request: Request) -> dict[str, Any]:
    settings = _settings(request)
    if not settings.sendgrid_webhook_public_key:
        raise HTTPException(
            404, "SendGrid events are off: RELANCE_SENDGRID_WEBHOOK_PUBLIC_KEY is not set")
    payload = (await request.body()).decode("utf-8")
    signature = request.headers.get(EventWebhookHeader.SIGNATURE, "")
    timestamp = request.headers.get(EventWebhookHeader.TIMESTAMP, "")
    verifier = EventWebhook()
    try:
        key = verifier.convert_public_key_to_ecdsa(settings.sendgrid_webhook_public_key)
        valid = bool(signature and timestamp
                     and verifier.verify_signature(payload, signature, timestamp, key))
    except (ValueError, TypeError):
        valid = False
    if not valid:
        raise HTTPException(403, "invalid SendGrid signature")
    try:
        events = json.loads(payload)
    except ValueError:
        raise HTTPException(400, "body is not JSON") from None
    if not isinstance(events, list):
        raise HTTPException(400, "expected a JSON array of events")

    def record() -> list[str]:
        with Session(request.app.state.engine) as session:
            return [record_email_event(session=session, event=e)
                    for e in events if isinstance(e, dict)]

    outcomes = await run_in_threadpool(record)
    log.info("sendgrid events: %s", outcomes)
    return {"received": len(events)}


async def _verified_twilio_form(request: Request) -> dict[str, str]:
    settings = _settings(request)
    if not settings.twilio_auth_token:
        raise HTTPException(
            404, "Twilio webhooks are off: RELANCE_TWILIO_AUTH_TOKEN is not set")
    # Twilio posts application/x-www-form-urlencoded.
    form = dict(parse_qsl((await request.body()).decode("utf-8"), keep_blank_values=True))
    # Twilio signs the URL it called: the public one when behind a proxy.
    url = (settings.public_base_url.rstrip("/") + request.url.path
           + (f"?{request.url.query}" if request.url.query else "")
           if settings.public_base_url else str(request.url))
    signature = request.headers.get("X-Twilio-Signature", "")
    if not RequestValidator(settings.twilio_auth_token).validate(url, form, signature):
        raise HTTPException(403, "invalid Twilio signature")
    return form


@router.post("/twilio/status")
async def twilio_status(request: Request) -> dict[str, str]:
    form = await _verified_twilio_form(request)

    def record() -> str:
        with Session(request.app.state.engine) as session:
            return record_sms_status(session=session, message_sid=form.get("MessageSid", ""),
                                     status=form.get("MessageStatus", ""),
                                     error_code=form.get("ErrorCode") or None)

    return {"result": await run_in_threadpool(record)}


@router.post("/twilio/inbound")
async def twilio_inbound(request: Request) -> Response:
    form = await _verified_twilio_form(request)

    def record() -> list[int]:
        with Session(request.app.state.engine) as session:
            return record_inbound_sms(session=session, from_number=form.get("From", ""),
                                      body=form.get("Body", ""),
                                      message_sid=form.get("MessageSid", ""))

    opted = await run_in_threadpool(record)
    log.info("inbound sms from %s: opted out customers %s", form.get("From"), opted)
    return Response(EMPTY_TWIML, media_type="application/xml")
