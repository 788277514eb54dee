"""An invoice's life driven over HTTP against a real dev server and worker, one
policy day = 1 s: an agent works the call task (claim, 403 for others, 409 on a
bad or double completion), a manager pauses and resumes, a payment webhook
closes it, and the timeline tells every step in order."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta

from dunning_client.start import workflow_id
from ledger.models import Role
from tests.api_support import (
    api_settings,
    generic_body,
    generic_headers,
    invoice,
    running_api,
    token_headers,
)
from tests.factories import add_invoices, new_worker, start


async def _wait_for_task(http, headers, ref: str, timeout: float = 40) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = await http.get("/tasks", params={"customer_ref": ref}, headers=headers)
        assert r.status_code == 200, r.text
        if r.json()["items"]:
            return r.json()["items"][0]
        await asyncio.sleep(0.5)
    raise AssertionError(f"no call task for {ref} after {timeout}s")


async def test_agent_and_manager_work_an_invoice_to_paid(dev_env, engine, database_url,
                                                         executor):
    client = dev_env.client
    settings = api_settings(database_url, day_seconds=1)
    ref = f"C-{uuid.uuid4().hex[:8]}"
    today = datetime.now(UTC).date()
    # One day late: the reminder goes now, the SMS 6 s later, the call task at 13 s.
    [invoice_id] = add_invoices(engine, due=today - timedelta(days=1), amounts=[300000],
                                customer_ref=ref)
    alice, bob = (token_headers(engine, Role.AGENT, f"alice-{ref}"),
                  token_headers(engine, Role.AGENT, f"bob-{ref}"))
    manager = token_headers(engine, Role.MANAGER, f"maria-{ref}")
    async with new_worker(client, engine, settings, executor) as worker:
        [handle] = await start(client, engine, settings, worker, [invoice_id])
        async with running_api(settings, client) as http:
            task = await _wait_for_task(http, alice, ref)
            assert task["invoice_id"] == invoice_id and task["step_key"] == "call"
            assert task["balance"] == {"amount": "3000.00", "currency": "EUR"}
            assert task["priority"] > 0 and task["assigned_to"] is None
            tid = task["id"]

            assert (await http.post(f"/tasks/{tid}/claim", headers=bob)).status_code == 200
            r = await http.post(f"/tasks/{tid}/claim", headers=alice)
            assert r.status_code == 409 and "claimed by bob" in r.json()["error"]["message"]
            r = await http.post(f"/tasks/{tid}/complete", json={"outcome": "no_answer"},
                                headers=alice)
            assert r.status_code == 403
            mine = await http.get("/tasks", params={"mine": True}, headers=bob)
            assert [t["id"] for t in mine.json()["items"]] == [tid]

            r = await http.post(f"/tasks/{tid}/complete", json={"outcome": "promise_to_pay"},
                                headers=bob)
            assert r.status_code == 409
            assert r.json()["error"]["message"] == "promise_to_pay needs a promise_date"
            r = await http.post(f"/tasks/{tid}/complete",
                                json={"outcome": "no_answer", "notes": "voicemail"},
                                headers=bob)
            assert r.status_code == 200, r.text
            done = r.json()
            assert {k: done[k] for k in ("task_id", "outcome", "stage", "task_status")} == {
                "task_id": tid, "outcome": "no_answer", "stage": "call", "task_status": "completed"}
            assert [(i["invoice_id"], i["done"], i["outcome"]) for i in done["invoices"]] == [
                (invoice_id, True, "no_answer")]
            r = await http.post(f"/tasks/{tid}/complete", json={"outcome": "no_answer"},
                                headers=bob)
            assert r.status_code == 409
            assert r.json()["error"]["message"] == f"call task {tid} is already completed"

            ctx = (await http.get(f"/customers/{task['customer_id']}/context",
                                  headers=alice)).json()
            assert [c["outcome"] for c in ctx["previous_calls"]] == ["no_answer"]
            assert ctx["previous_calls"][0]["completed_by"] == f"bob-{ref}"
            assert {(m["step"], m["status"]) for m in ctx["last_messages"]} >= {
                ("reminder", "sent"), ("sms_reminder", "sent")}
            assert ctx["balance"]["amount"] == "3000.00"

            r = await http.post(f"/invoices/{invoice_id}/pause",
                                json={"reason": "customer on holiday"}, headers=alice)
            assert r.status_code == 403
            r = await http.post(f"/invoices/{invoice_id}/pause",
                                json={"reason": "customer on holiday"}, headers=manager)
            assert r.status_code == 200 and r.json()["stage"] == "paused"
            r = await http.post(f"/invoices/{invoice_id}/pause", json={}, headers=manager)
            assert r.status_code == 409
            assert r.json()["error"]["message"] == "dunning is already paused"
            r = await http.post(f"/invoices/{invoice_id}/resume", json={}, headers=manager)
            assert r.status_code == 200

            number = invoice(engine, invoice_id).number
            body = generic_body(amount="3000.00", invoice_number=number)
            sent = time.perf_counter()
            r = await http.post("/webhooks/payments", content=body, headers=generic_headers(body))
            acked = time.perf_counter()
            result = await handle.result()
            closed = time.perf_counter()
            assert r.json()["signalled"] is True and result.status == "paid"
            print(f"\nwebhook ack {1000 * (acked - sent):.0f} ms, "  # noqa: T201
                  f"webhook to workflow closed {1000 * (closed - sent):.0f} ms")

            r = await http.post(f"/invoices/{invoice_id}/resume", json={}, headers=manager)
            assert r.status_code == 409  # the workflow has ended

            tl = (await http.get(f"/invoices/{invoice_id}/timeline", headers=manager)).json()
    wid = workflow_id(invoice_id)
    assert tl["temporal_ui_url"].endswith(f"/namespaces/default/workflows/{wid}")
    assert tl["history_available"] is True
    story = [(e["source"], e["kind"], e["summary"]) for e in tl["entries"]]
    temporal = [s for src, _, s in story if src == "temporal"]

    def first(prefix: str, within: list[str]) -> int:
        return next(i for i, s in enumerate(within) if s.startswith(prefix))

    steps = ["dunning started", "send email for step reminder", "send sms for step sms_reminder",
             "open a call task for step call", "update complete_call_task accepted from bob",
             "update pause accepted from maria", "update resume accepted from maria",
             "payment received: 3000.00 EUR", "dunning ended: paid"]
    positions = [first(s, temporal) for s in steps]
    assert positions == sorted(positions), temporal
    assert any(s.startswith("waiting until") and "sms_reminder" in s for s in temporal)
    kinds = [k for src, k, _ in story if src == "ledger"]
    for kind in ("invoice_imported", "message_sent", "call_task_created", "call_task_completed",
                 "update_rejected", "paused", "resumed", "payment_received", "payment_applied",
                 "dunning_closed"):
        assert kind in kinds, kind
    sms = next(e for e in tl["entries"] if e["kind"] == "message_sent"
               and e["detail"]["channel"] == "sms")
    assert sms["detail"]["text"]
    paused = next(e for e in tl["entries"] if e["kind"] == "paused")
    assert paused["actor"] == f"maria-{ref}"
    times = [e["at"] for e in tl["entries"]]
    assert times == sorted(times)
