"""Payload encryption: round trip, key rotation, refusals, the Web UI endpoint, and
a real history on the dev server that holds no customer data in clear."""

from __future__ import annotations

import base64
import uuid
from datetime import date, timedelta

import pytest
from cryptography.exceptions import InvalidTag
from fastapi import FastAPI
from fastapi.testclient import TestClient
from google.protobuf import json_format
from pydantic import ValidationError
from sqlmodel import Session, select
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.api.history.v1 import History
from temporalio.client import Client

from api.routes import codec as codec_routes
from dunning_client.converter import relance_data_converter
from ledger.models import CallTask, Invoice
from payload_codec import (
    ENCODING,
    KEY_ID_META,
    AesGcmCodec,
    CodecKeyError,
    codec_from_key_spec,
    new_key,
    parse_key_ring,
    with_codec,
)
from settings import Settings
from tests.compressed import start_compact, wait_for_call_task
from tests.factories import add_invoices, new_worker, settings_for
from workflows.dunning import CallOutcome, CompleteCallTask, DunningWorkflow

EMAIL = "ap@client.example"
PHONE = "+33612345678"


def clear_payload(text: str) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=text.encode())


def ring(*kids: str) -> dict[str, bytes]:
    return {kid: base64.b64decode(new_key()) for kid in kids}


async def test_round_trip_hides_the_data_and_names_the_key():
    codec = AesGcmCodec(ring("2026-01"), "2026-01")
    original = clear_payload(f'{{"email": "{EMAIL}"}}')
    [sealed] = await codec.encode([original])
    assert sealed.metadata["encoding"] == ENCODING
    assert sealed.metadata[KEY_ID_META] == b"2026-01"
    assert EMAIL.encode() not in sealed.SerializeToString()
    assert await codec.decode([sealed]) == [original]
    # Two encryptions of the same payload differ (fresh nonce).
    assert (await codec.encode([original]))[0].data != sealed.data


async def test_payloads_written_before_a_rotation_still_decrypt():
    keys = ring("old", "new")
    before = AesGcmCodec({"old": keys["old"]}, "old")
    after = AesGcmCodec(keys, "new")
    [old_payload] = await before.encode([clear_payload("F-2025-001")])
    [new_payload] = await after.encode([clear_payload("F-2026-001")])
    assert new_payload.metadata[KEY_ID_META] == b"new"
    assert [p.data for p in await after.decode([old_payload, new_payload])] == [
        b"F-2025-001", b"F-2026-001"]
    # Once the old key is retired from the ring, its payloads are refused by name.
    retired = AesGcmCodec({"new": keys["new"]}, "new")
    with pytest.raises(CodecKeyError, match="unknown key id 'old'"):
        await retired.decode([old_payload])


async def test_a_tampered_or_relabelled_payload_is_refused():
    keys = ring("a", "b")
    codec = AesGcmCodec(keys, "a")
    [sealed] = await codec.encode([clear_payload("42")])
    # Flip a bit of the tag (setting the last byte to 0 left it unchanged 1 time in 256).
    tampered = Payload(metadata=sealed.metadata,
                       data=sealed.data[:-1] + bytes([sealed.data[-1] ^ 0x01]))
    relabelled = Payload(metadata={**sealed.metadata, KEY_ID_META: b"b"}, data=sealed.data)
    for bad in (tampered, relabelled):
        with pytest.raises(InvalidTag):
            await codec.decode([bad])


async def test_unencrypted_payloads_pass_through_decode():
    codec = AesGcmCodec(ring("k"), "k")
    plain = clear_payload("null")
    assert await codec.decode([plain]) == [plain]


@pytest.mark.parametrize("spec, message", [
    ("k1", "expected 'key-id:base64-key'"),
    (":" + new_key(), "expected 'key-id:base64-key'"),
    ("k1:not base64!", "not valid base64"),
    ("k1:" + base64.b64encode(b"short").decode(), "is 5 bytes"),
    (f"k1:{new_key()},k1:{new_key()}", "appears twice"),
])
def test_bad_key_rings_are_refused(spec, message):
    with pytest.raises(CodecKeyError, match=message):
        parse_key_ring(spec)


def test_settings_check_the_ring_and_the_active_key():
    assert codec_from_key_spec("", "") is None
    with pytest.raises(ValidationError, match="active codec key 'k2' is not in the key ring"):
        Settings(codec_keys=f"k1:{new_key()}", codec_active_key="k2")
    first = codec_from_key_spec(f"k1:{new_key()},k2:{new_key()}", "")
    assert first is not None and first.active_key_id == "k1"


# --- the endpoint the Temporal Web UI calls ----------------------------------

UI = "http://temporal-ui.internal:8080"


def codec_app(token: str, keys: str) -> TestClient:
    app = FastAPI()
    app.state.settings = Settings(codec_keys=keys, codec_endpoint_token=token,
                                  temporal_ui_url=UI)
    app.include_router(codec_routes.router)
    return TestClient(app)


def payloads_json(*payloads: Payload) -> str:
    return json_format.MessageToJson(Payloads(payloads=list(payloads)))


def test_codec_endpoint_decodes_for_token_holders_only():
    keys = f"k1:{new_key()}"
    http = codec_app("s3cret-token", keys)
    encoded = http.post("/codec/encode", content=payloads_json(clear_payload(EMAIL)),
                        headers={"Authorization": "Bearer s3cret-token"})
    assert encoded.status_code == 200
    assert EMAIL not in encoded.text and "binary/encrypted" in base64.b64decode(
        encoded.json()["payloads"][0]["metadata"]["encoding"]).decode()
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret-token"}):
        refused = http.post("/codec/decode", content=encoded.text, headers=headers)
        assert refused.status_code == 401
    decoded = http.post("/codec/decode", content=encoded.text,
                        headers={"Authorization": "Bearer s3cret-token", "Origin": UI,
                                 "X-Namespace": "default"})
    assert decoded.status_code == 200
    assert base64.b64decode(decoded.json()["payloads"][0]["data"]).decode() == EMAIL
    assert decoded.headers["access-control-allow-origin"] == UI
    bad = http.post("/codec/decode", content="{not json",
                    headers={"Authorization": "Bearer s3cret-token"})
    assert bad.status_code == 422


def test_codec_endpoint_cors_and_disabled_mode():
    http = codec_app("t", f"k1:{new_key()}")
    preflight = http.options("/codec/decode", headers={
        "Origin": UI, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type,x-namespace"})
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == UI
    assert "Authorization" in preflight.headers["access-control-allow-headers"]
    stranger = http.options("/codec/decode", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in stranger.headers
    disabled = codec_app("", f"k1:{new_key()}")
    assert disabled.post("/codec/decode", content=payloads_json(),
                         headers={"Authorization": "Bearer "}).status_code == 404


# --- a real history on the dev server ----------------------------------------


async def run_cycle_and_read_raw_history(dev_env, engine, database_url, executor,
                                         converter_codec: AesGcmCodec | None) -> tuple[bytes,
                                                                                       str, str]:
    """Run a compact B2B cycle whose call task is answered with notes holding the
    customer's email and phone; return the history bytes read *without* a codec."""
    target = dev_env.client.service_client.config.target_host
    client = await Client.connect(target, data_converter=with_codec(relance_data_converter,
                                                                    converter_codec))
    settings = settings_for(database_url)
    ref = f"C-{uuid.uuid4().hex[:8]}"
    [invoice_id] = add_invoices(engine, due=date.today() + timedelta(days=1), amounts=[123456],
                                customer_ref=ref, email=EMAIL, phone=PHONE)
    async with new_worker(client, engine, settings, executor) as worker:
        handle = await start_compact(client, engine, settings, worker.task_queue, invoice_id)
        task_id = await wait_for_call_task(handle)
        await handle.execute_update(DunningWorkflow.complete_call_task, CompleteCallTask(
            task_id=task_id, outcome=CallOutcome.NO_ANSWER, agent="agent-7",
            notes=f"voicemail; customer asked for a copy at {EMAIL}, call back on {PHONE}"))
        result = await handle.result()
    assert result.status == "escalated"
    with Session(engine) as session:
        task = session.exec(select(CallTask).where(CallTask.id == task_id)).one()
        assert PHONE in (task.notes or "")  # the notes crossed Temporal and were decrypted
        invoice = session.get(Invoice, invoice_id)
        assert invoice is not None
    raw = await dev_env.client.get_workflow_handle(handle.id).fetch_history()
    return History(events=raw.events).SerializeToString(), invoice.number, ref


async def test_history_holds_no_customer_data_in_clear(dev_env, engine, database_url,
                                                       executor):
    codec = AesGcmCodec(ring("2026-q4"), "2026-q4")
    clear, number, _ = await run_cycle_and_read_raw_history(
        dev_env, engine, database_url, executor, None)
    # Control: without the codec the same cycle leaves the data readable.
    assert PHONE.encode() in clear and EMAIL.encode() in clear and number.encode() in clear

    sealed, number, ref = await run_cycle_and_read_raw_history(
        dev_env, engine, database_url, executor, codec)
    for secret in (PHONE, EMAIL, number, "voicemail", "agent-7"):
        assert secret.encode() not in sealed, secret
    assert sealed.count(ENCODING) > 10
    # The customer reference is indexed as the RelanceCustomer search attribute,
    # which Temporal keeps in clear by design: it must stay a pseudonymous code.
    assert ref.encode() in sealed
