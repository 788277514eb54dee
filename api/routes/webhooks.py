"""Payment gateways. No bearer token here: each gateway signs its requests with
its own secret (settings). A request that fails verification records nothing."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

import stripe
from fastapi import APIRouter, Header, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from api.deps import EngineDep, SettingsDep, TemporalClientDep
from api.errors import ApiError, responses
from api.money import Currency, PositiveAmount, to_cents
from api.payments import IncomingPayment, signal_payment, store_payment
from api.signatures import SignatureError, verify

router = APIRouter(prefix="/webhooks", tags=["webhooks"])

MAX_BODY = 256 * 1024


class WebhookAck(BaseModel):
    status: Literal["recorded", "duplicate", "ignored"]
    payment_id: int | None = None
    invoice_id: int | None = None
    matched_by: str | None = Field(
        default=None, description="invoice_reference, customer_amount or unapplied")
    signalled: bool = Field(
        default=False,
        description="The invoice's workflow has the payment; if false the reconciler "
                    "delivers it later (the payment is already committed).")

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "status": "recorded", "payment_id": 17, "invoice_id": 42,
        "matched_by": "invoice_reference", "signalled": True}]})


class GenericPayment(BaseModel):
    """A payment notification from a bank feed or any gateway, signed with
    `Relance-Signature` (see the README)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "event_id": "bank-2026-11-24-0001", "gateway": "bank", "amount": "1250.00",
        "currency": "EUR", "invoice_number": "F-2026-0042", "customer_ref": "C-ACME",
        "reference": "VIR ACME F-2026-0042"}]})

    event_id: Annotated[str, Field(min_length=1, max_length=128)]
    gateway: Annotated[str, Field(min_length=1, max_length=24, pattern=r"^[a-z0-9_-]+$")] = "bank"
    amount: PositiveAmount
    currency: Currency
    invoice_number: Annotated[str | None, Field(max_length=64)] = None
    customer_ref: Annotated[str | None, Field(max_length=64)] = None
    reference: Annotated[str | None, Field(max_length=500)] = None
    received_at: datetime | None = None


class StripeObject(BaseModel):
    id: str = Field(max_length=128)
    amount_received: int | None = Field(default=None, gt=0)
    amount: int | None = Field(default=None, gt=0)
    currency: str = Field(pattern=r"^[a-zA-Z]{3}$")
    metadata: dict[str, str] = Field(default_factory=dict)


class StripeEvent(BaseModel):
    id: str = Field(min_length=1, max_length=128)
    type: str
    data: dict[str, Any]


async def _raw_body(request: Request) -> bytes:
    body = await request.body()
    if len(body) > MAX_BODY:
        raise ApiError(413, "webhook body too large")
    return body


async def _accept(engine: Any, client: Any, settings: Any,
                  incoming: IncomingPayment) -> WebhookAck:
    stored = await asyncio.to_thread(store_payment, engine, incoming)
    signalled = stored.signalled
    if not signalled and stored.invoice_id is not None:
        signalled = await signal_payment(
            engine, client, stored.payment_id,
            timedelta(seconds=settings.temporal_rpc_timeout_seconds))
    return WebhookAck(status="recorded" if stored.created else "duplicate",
                      payment_id=stored.payment_id, invoice_id=stored.invoice_id,
                      matched_by=stored.matched_by if stored.created else None,
                      signalled=signalled)


@router.post("/stripe", response_model=WebhookAck, responses=responses(400, 413, 422),
             summary="Stripe event (payment_intent.succeeded)")
async def stripe_webhook(
    request: Request, engine: EngineDep, client: TemporalClientDep, settings: SettingsDep,
    stripe_signature: Annotated[str | None, Header(alias="Stripe-Signature")] = None,
) -> WebhookAck:
    """Verified with `stripe.Webhook.construct_event` (HMAC-SHA256 over timestamp
    and body, tolerance window). `payment_intent.succeeded` records a payment,
    matched by `metadata.invoice_number` then `metadata.customer_ref` and amount;
    other event types are acknowledged and ignored. Idempotent by event id."""
    body = await _raw_body(request)
    if not stripe_signature:
        raise ApiError(400, "missing Stripe-Signature header", "bad_signature")
    try:
        stripe.Webhook.construct_event(body, stripe_signature, settings.stripe_webhook_secret,
                                       tolerance=settings.webhook_tolerance_seconds)
    except stripe.SignatureVerificationError as err:
        raise ApiError(400, f"Stripe signature rejected: {err.user_message or err}",
                       "bad_signature") from None
    except ValueError:
        raise ApiError(400, "body is not JSON", "malformed_body") from None
    try:
        event = StripeEvent.model_validate_json(body)
        if event.type != "payment_intent.succeeded":
            return WebhookAck(status="ignored")
        obj = StripeObject.model_validate(event.data.get("object"))
    except ValidationError as err:
        raise ApiError(422, "not a Stripe payment_intent event", "malformed_body",
                       json.loads(err.json(include_url=False))) from None
    cents = obj.amount_received or obj.amount
    if cents is None:
        raise ApiError(422, "payment_intent has no amount", "malformed_body")
    incoming = IncomingPayment(
        source="stripe", external_id=event.id, amount_cents=cents,
        currency=obj.currency.upper(),
        invoice_ref=obj.metadata.get("invoice_number") or obj.metadata.get("invoice_id"),
        customer_ref=obj.metadata.get("customer_ref"))
    return await _accept(engine, client, settings, incoming)


@router.post("/payments", response_model=WebhookAck, responses=responses(400, 413, 422),
             summary="Generic signed payment (bank transfer, other gateways)",
             openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
                 "schema": GenericPayment.model_json_schema(ref_template="#/components/"
                                                            "schemas/{model}"),
                 "example": GenericPayment.model_config["json_schema_extra"]["examples"][0],  # type: ignore[index]
             }}}})
async def generic_webhook(
    request: Request, engine: EngineDep, client: TemporalClientDep, settings: SettingsDep,
    relance_signature: Annotated[str | None, Header(alias="Relance-Signature")] = None,
) -> WebhookAck:
    """Body: `GenericPayment` as JSON. Header
    `Relance-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`
    with `RELANCE_GENERIC_WEBHOOK_SECRET`; requests older than the tolerance
    (`RELANCE_WEBHOOK_TOLERANCE_SECONDS`, 300 s) are refused. Idempotent by
    (`gateway`, `event_id`)."""
    body = await _raw_body(request)
    try:
        verify(body, relance_signature, settings.generic_webhook_secret,
               settings.webhook_tolerance_seconds)
    except SignatureError as err:
        raise ApiError(400, str(err), "bad_signature") from None
    try:
        payload = GenericPayment.model_validate_json(body)
        cents = to_cents(payload.amount)
    except ValidationError as err:
        raise ApiError(422, "payment body is not valid", "malformed_body",
                       json.loads(err.json(include_url=False))) from None
    incoming = IncomingPayment(
        source=f"gw:{payload.gateway}", external_id=payload.event_id, amount_cents=cents,
        currency=payload.currency, invoice_ref=payload.invoice_number,
        customer_ref=payload.customer_ref)
    return await _accept(engine, client, settings, incoming)
