"""Payment gateways. No bearer token here: each gateway signs its requests with
its own secret (settings). A request that fails verification records nothing."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

import stripe
from fastapi import APIRouter, Header, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from api.deps import EngineDep, SettingsDep, TemporalClientDep
from api.errors import ApiError, responses
from api.money import Currency, Money, PositiveAmount, money, to_cents
from api.payments import IncomingPayment, StoredPayment, accept_payment, remittance_words
from api.signatures import SignatureError, verify

router = APIRouter(prefix="/webhooks", tags=["webhooks"])

MAX_BODY = 256 * 1024


class PaymentPartOut(BaseModel):
    payment_id: int
    invoice_id: int | None = Field(description="null: unapplied cash, for a human to match")
    invoice_number: str | None
    amount: Money
    signalled: bool


class WebhookAck(BaseModel):
    status: Literal["recorded", "duplicate", "ignored"]
    payment_id: int | None = Field(
        default=None, description="The payment's row when it was recorded as one row "
                                  "(null when split: see `parts`)")
    invoice_id: int | None = None
    matched_by: str | None = Field(
        default=None, description="invoice_reference (the one invoice named), references, "
                                  "exact_set or oldest_first (split across the customer's "
                                  "open invoices, rules/allocation.py), or unapplied")
    signalled: bool = Field(
        default=False,
        description="Every invoice's workflow has its part; if false the reconciler "
                    "delivers it later (the payment is already committed).")
    parts: list[PaymentPartOut] = Field(
        default_factory=list, description="The ledger rows the payment was recorded as: "
                                          "one per invoice paid, plus any unapplied rest")

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "status": "recorded", "payment_id": 17, "invoice_id": 42,
        "matched_by": "invoice_reference", "signalled": True, "parts": [
            {"payment_id": 17, "invoice_id": 42, "invoice_number": "F-2026-0042",
             "amount": {"amount": "1250.00", "currency": "EUR"}, "signalled": True}]}]})


def webhook_ack(stored: StoredPayment) -> WebhookAck:
    single = stored.parts[0] if len(stored.parts) == 1 else None
    owed = [p for p in stored.parts if p.invoice_id is not None]
    return WebhookAck(
        status="recorded" if stored.created else "duplicate",
        payment_id=single.payment_id if single else None,
        invoice_id=single.invoice_id if single else None,
        matched_by=stored.matched_by if stored.created else None,
        signalled=bool(owed) and all(p.signalled for p in owed),
        parts=[PaymentPartOut(payment_id=p.payment_id, invoice_id=p.invoice_id,
                              invoice_number=p.invoice_number,
                              amount=money(p.amount_cents, p.currency), signalled=p.signalled)
               for p in stored.parts])


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
    return webhook_ack(await accept_payment(
        engine, client, incoming, timedelta(seconds=settings.temporal_rpc_timeout_seconds)))


@router.post("/stripe", response_model=WebhookAck, responses=responses(400, 413, 422),
             summary="Stripe event (payment_intent.succeeded)")
async def stripe_webhook(
    request: Request, engine: EngineDep, client: TemporalClientDep, settings: SettingsDep,
    stripe_signature: Annotated[str | None, Header(alias="Stripe-Signature")] = None,
) -> WebhookAck:
    """Verified with `stripe.Webhook.construct_event` (HMAC-SHA256 over timestamp
    and body, tolerance window). `payment_intent.succeeded` records a payment for
    `metadata.invoice_number`, or splits it across the invoices listed in
    `metadata.invoice_numbers` (comma-separated) or, with only `metadata.customer_ref`,
    across that customer's open invoices (`rules/allocation.py`); other event types
    are acknowledged and ignored. Idempotent by event id."""
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
        customer_ref=obj.metadata.get("customer_ref"),
        references=remittance_words(obj.metadata.get("invoice_numbers")))
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
    (`gateway`, `event_id`). One invoice named (`invoice_number`, or alone in
    `reference`) is paid as is; several invoice numbers in `reference`, or only a
    `customer_ref`, split the payment across the customer's open invoices
    (references first, then an exact set, else oldest due first); the rest is
    unapplied cash. Each invoice's workflow gets its own part (`parts`)."""
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
        customer_ref=payload.customer_ref, references=remittance_words(payload.reference))
    return await _accept(engine, client, settings, incoming)
