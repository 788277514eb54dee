"""Payment webhooks over HTTP against a real worker and Temporal (time-skipping)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import timedelta

from api.payments import deliver_pending_payments
from tests.api_support import (
    api_settings,
    generic_body,
    generic_headers,
    invoice,
    payments,
    running_api,
    stripe_event,
    stripe_headers,
)
from tests.factories import add_invoices, audit_kinds, new_worker, start
from workflows.dunning import DunningWorkflow


async def _open_invoice(env, engine, amount_cents: int, **kw) -> int:
    today = (await env.get_current_time()).date()
    [invoice_id] = add_invoices(engine, due=today + timedelta(days=10), amounts=[amount_cents],
                                **kw)
    return invoice_id


async def test_generic_payment_webhook_closes_the_workflow(env, engine, database_url, executor):
    settings = api_settings(database_url)
    invoice_id = await _open_invoice(env, engine, 125000)
    number = invoice(engine, invoice_id).number
    async with new_worker(env.client, engine, settings, executor) as worker:
        [handle] = await start(env.client, engine, settings, worker, [invoice_id])
        async with running_api(settings, env.client) as http:
            body = generic_body(amount="1250.00", invoice_number=number)
            resp = await http.post("/webhooks/payments", content=body,
                                   headers=generic_headers(body))
            assert resp.status_code == 200, resp.text
            ack = resp.json()
            assert ack["status"] == "recorded" and ack["signalled"] is True
            assert ack["invoice_id"] == invoice_id and ack["matched_by"] == "invoice_reference"
            result = await handle.result()
    assert result.status == "paid" and result.balance_cents == 0
    [payment] = payments(engine, invoice_id=invoice_id)
    assert payment.signalled_at is not None and payment.applied_cents == 125000
    assert invoice(engine, invoice_id).status == "paid"
    assert "payment_applied" in audit_kinds(engine, invoice_id)


async def test_duplicate_and_replayed_stripe_events_count_once(env, engine, database_url,
                                                               executor):
    settings = api_settings(database_url)
    invoice_id = await _open_invoice(env, engine, 100000)
    number = invoice(engine, invoice_id).number
    event_id = f"evt_{uuid.uuid4().hex[:16]}"
    body = stripe_event(40000, {"invoice_number": number}, event_id=event_id)
    async with new_worker(env.client, engine, settings, executor) as worker:
        [handle] = await start(env.client, engine, settings, worker, [invoice_id])
        async with running_api(settings, env.client) as http:
            statuses = []
            for _ in range(3):  # Stripe redelivering the same event
                r = await http.post("/webhooks/stripe", content=body, headers=stripe_headers(body))
                statuses.append((r.status_code, r.json()["status"]))
            # The same event again later, signed with a fresh timestamp (a replay that
            # passes the tolerance window) and concurrently: still one payment.
            replays = await asyncio.gather(*(
                http.post("/webhooks/stripe", content=body, headers=stripe_headers(body))
                for _ in range(5)))
            assert statuses == [(200, "recorded"), (200, "duplicate"), (200, "duplicate")]
            assert {r.status_code for r in replays} == {200}
            assert {r.json()["status"] for r in replays} == {"duplicate"}
            status = await handle.query(DunningWorkflow.status)
            await handle.execute_update(DunningWorkflow.cancel,
                                        {"actor": "test", "reason": "write_off"})
            await handle.result()
    assert status.balance_cents == 60000 and status.status == "open"
    [payment] = payments(engine, source="stripe", external_id=event_id)
    assert payment.amount_cents == 40000 and payment.signalled_at is not None
    assert audit_kinds(engine, invoice_id).count("payment_received") == 1
    assert audit_kinds(engine, invoice_id).count("payment_applied") == 1


async def test_bad_signature_stale_timestamp_and_malformed_body_record_nothing(
        env, engine, database_url):
    settings = api_settings(database_url)
    async with running_api(settings, env.client) as http:
        event_id = f"bank-{uuid.uuid4().hex[:12]}"
        body = generic_body(event_id=event_id)
        cases = {
            "wrong secret": (body, generic_headers(body, secret="not-the-secret")),
            "no header": (body, {"Content-Type": "application/json"}),
            "stale": (body, generic_headers(body, timestamp=int(time.time()) - 3600)),
            "future": (body, generic_headers(body, timestamp=int(time.time()) + 3600)),
            "tampered": (body.replace(b"100.00", b"999.00"), generic_headers(body)),
        }
        for name, (content, headers) in cases.items():
            r = await http.post("/webhooks/payments", content=content, headers=headers)
            assert r.status_code == 400, name
            assert r.json()["error"]["code"] == "bad_signature", name
        for bad in (b"{not json", generic_body(event_id=event_id, amount="12.345"),
                    generic_body(event_id=event_id, amount=-5),
                    generic_body(event_id=event_id, currency="euro"),
                    generic_body(event_id=event_id, surprise=True)):
            r = await http.post("/webhooks/payments", content=bad, headers=generic_headers(bad))
            assert r.status_code == 422, bad
            assert r.json()["error"]["code"] == "malformed_body"
        sbody = stripe_event(1000, {}, event_id=event_id)
        r = await http.post("/webhooks/stripe", content=sbody,
                            headers=stripe_headers(sbody, secret="whsec_wrong"))
        assert r.status_code == 400 and r.json()["error"]["code"] == "bad_signature"
        r = await http.post("/webhooks/stripe", content=sbody,
                            headers=stripe_headers(sbody, timestamp=int(time.time()) - 3600))
        assert r.status_code == 400
    assert payments(engine, external_id=event_id) == []


async def test_unmatched_payment_is_kept_as_unapplied_cash(env, engine, database_url):
    settings = api_settings(database_url)
    async with running_api(settings, env.client) as http:
        body = generic_body(amount="77.70", invoice_number="NO-SUCH-INVOICE",
                            customer_ref="NO-SUCH-CUSTOMER")
        r = await http.post("/webhooks/payments", content=body, headers=generic_headers(body))
    assert r.status_code == 200
    assert r.json()["matched_by"] == "unapplied" and r.json()["invoice_id"] is None
    [payment] = payments(engine, external_id=json.loads(body)["event_id"])
    assert payment.invoice_id is None and payment.unapplied_cents == 7770


async def test_customer_and_amount_match_when_no_reference(env, engine, database_url, executor):
    settings = api_settings(database_url)
    ref = f"C-{uuid.uuid4().hex[:8]}"
    today = (await env.get_current_time()).date()
    small, large = add_invoices(engine, due=today + timedelta(days=10), amounts=[30000, 90000],
                                customer_ref=ref)
    async with new_worker(env.client, engine, settings, executor) as worker:
        handles = await start(env.client, engine, settings, worker, [small, large])
        async with running_api(settings, env.client) as http:
            body = generic_body(amount="900.00", customer_ref=ref)
            r = await http.post("/webhooks/payments", content=body, headers=generic_headers(body))
            # A payment on the customer is split (rules/allocation.py): the one open
            # invoice of exactly that amount is an exact set of one.
            assert r.json()["matched_by"] == "exact_set"
            assert r.json()["invoice_id"] == large
            assert [p["invoice_id"] for p in r.json()["parts"]] == [large]
            assert (await handles[1].result()).status == "paid"
            await handles[0].execute_update(DunningWorkflow.cancel,
                                            {"actor": "test", "reason": "credit_note"})
            await handles[0].result()


async def test_payment_reaches_the_workflow_after_temporal_was_down(env, engine, database_url,
                                                                    executor):
    settings = api_settings(database_url)
    invoice_id = await _open_invoice(env, engine, 50000)
    number = invoice(engine, invoice_id).number
    async with new_worker(env.client, engine, settings, executor) as worker:
        [handle] = await start(env.client, engine, settings, worker, [invoice_id])
        # The API's Temporal is unreachable: nothing listens on port 1.
        down = api_settings(database_url, temporal_address="127.0.0.1:1",
                            temporal_rpc_timeout_seconds=1)
        async with running_api(down) as http:
            body = generic_body(amount="500.00", invoice_number=number)
            r = await http.post("/webhooks/payments", content=body, headers=generic_headers(body))
            assert r.status_code == 200, r.text
            assert r.json()["status"] == "recorded" and r.json()["signalled"] is False
            again = await http.post("/webhooks/payments", content=body,
                                    headers=generic_headers(body))
            assert again.json()["status"] == "duplicate"
        [payment] = payments(engine, invoice_id=invoice_id)
        assert payment.signalled_at is None
        # Temporal is back: the reconciler delivers what the webhook could not.
        assert await deliver_pending_payments(engine, env.client, only=[payment.id]) == 1
        assert await deliver_pending_payments(engine, env.client, only=[payment.id]) == 0
        result = await handle.result()
    assert result.status == "paid"
    [payment] = payments(engine, invoice_id=invoice_id)
    assert payment.signalled_at is not None and payment.applied_cents == 50000


async def test_payment_for_a_closed_workflow_becomes_unapplied(env, engine, database_url,
                                                               executor):
    settings = api_settings(database_url)
    invoice_id = await _open_invoice(env, engine, 20000)
    number = invoice(engine, invoice_id).number
    async with new_worker(env.client, engine, settings, executor) as worker:
        [handle] = await start(env.client, engine, settings, worker, [invoice_id])
        async with running_api(settings, env.client) as http:
            first = generic_body(amount="200.00", invoice_number=number)
            await http.post("/webhooks/payments", content=first, headers=generic_headers(first))
            assert (await handle.result()).status == "paid"
            second = generic_body(amount="200.00", invoice_number=number)
            r = await http.post("/webhooks/payments", content=second,
                                headers=generic_headers(second))
            assert r.status_code == 200
    [late] = payments(engine, external_id=json.loads(second)["event_id"])
    assert late.invoice_id is None and late.unapplied_cents == 20000
    assert "payment_unapplied" in audit_kinds(engine, invoice_id)
