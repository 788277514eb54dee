"""Driving the real app over HTTP in tests: the ASGI app with its lifespan run,
tokens per role, signed webhook bodies."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import Engine
from sqlmodel import Session, col, select
from temporalio.client import Client

from api.main import create_app
from api.signatures import sign
from ledger.crud import create_api_token
from ledger.models import Invoice, Payment, Role
from settings import Settings
from tests.factories import settings_for

STRIPE_SECRET = "whsec_test_relance"
GENERIC_SECRET = "generic-test-secret"


def api_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"stripe_webhook_secret": STRIPE_SECRET,
                              "generic_webhook_secret": GENERIC_SECRET,
                              "reconcile_interval_seconds": 0,
                              "temporal_rpc_timeout_seconds": 3}
    values.update(overrides)
    return settings_for(database_url, **values)


@asynccontextmanager
async def running_api(settings: Settings,
                      temporal: Client | None = None) -> AsyncIterator[httpx.AsyncClient]:
    app: FastAPI = create_app(settings, temporal)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://relance.test",
                                     timeout=30) as http:
            yield http


def token_headers(engine: Engine, role: Role, name: str | None = None) -> dict[str, str]:
    with Session(engine) as session:
        _, token = create_api_token(session=session, name=name or f"{role}-{uuid.uuid4().hex[:8]}",
                                    role=role)
    return {"Authorization": f"Bearer {token}"}


def generic_body(**fields: Any) -> bytes:
    body = {"event_id": f"bank-{uuid.uuid4().hex[:12]}", "amount": "100.00", "currency": "EUR"}
    body.update(fields)
    return json.dumps(body).encode()


def generic_headers(body: bytes, secret: str = GENERIC_SECRET,
                    timestamp: int | None = None) -> dict[str, str]:
    return {"Relance-Signature": sign(body, secret, timestamp),
            "Content-Type": "application/json"}


def stripe_event(amount_cents: int, metadata: dict[str, str], event_id: str | None = None,
                 currency: str = "eur") -> bytes:
    return json.dumps({
        "id": event_id or f"evt_{uuid.uuid4().hex[:20]}", "object": "event",
        "type": "payment_intent.succeeded", "api_version": "2024-06-20",
        "created": int(time.time()),
        "data": {"object": {"id": f"pi_{uuid.uuid4().hex[:20]}", "object": "payment_intent",
                            "amount": amount_cents, "amount_received": amount_cents,
                            "currency": currency, "metadata": metadata}},
    }).encode()


def stripe_headers(body: bytes, secret: str = STRIPE_SECRET,
                   timestamp: int | None = None) -> dict[str, str]:
    # Stripe's scheme is t=<ts>,v1=<HMAC-SHA256(secret, "<ts>.<body>")>, as ours.
    return {"Stripe-Signature": sign(body, secret, timestamp),
            "Content-Type": "application/json"}


def invoice(engine: Engine, invoice_id: int) -> Invoice:
    with Session(engine) as session:
        found = session.get(Invoice, invoice_id)
        assert found is not None
        return found


def payments(engine: Engine, *, source: str | None = None,
             external_id: str | None = None, invoice_id: int | None = None) -> list[Payment]:
    with Session(engine) as session:
        query = select(Payment).order_by(col(Payment.id))
        if source is not None:
            query = query.where(Payment.source == source)
        if external_id is not None:
            query = query.where(Payment.external_id == external_id)
        if invoice_id is not None:
            query = query.where(Payment.invoice_id == invoice_id)
        return list(session.exec(query).all())
