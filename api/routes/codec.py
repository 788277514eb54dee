"""Codec endpoint for the Temporal Web UI: it posts the encrypted payloads of a
history to `/codec/decode` and shows the clear text, to authorised people only.

The UI is configured with `TEMPORAL_CODEC_ENDPOINT=<api>/codec` and calls from
the browser, hence the CORS answers for the UI's origin (`RELANCE_TEMPORAL_UI_URL`).
Access: a bearer token (`RELANCE_CODEC_ENDPOINT_TOKEN`); empty disables the route.
"""

from __future__ import annotations

import secrets
from typing import Annotated
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidTag
from fastapi import APIRouter, Depends, Header, HTTPException, Request, Response, status
from google.protobuf import json_format
from temporalio.api.common.v1 import Payloads

from payload_codec import AesGcmCodec, codec_from_key_spec
from settings import Settings

router = APIRouter(prefix="/codec", tags=["codec"])

ALLOWED_HEADERS = "Authorization, Content-Type, X-Namespace"


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def require_codec_reader(request: Request,
                         authorization: Annotated[str | None, Header()] = None) -> None:
    """Only holders of the codec token may read decrypted customer data."""
    expected = _settings(request).codec_endpoint_token
    if not expected:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "codec endpoint is disabled")
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not secrets.compare_digest(token.encode(),
                                                                expected.encode()):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "a valid bearer token is required",
                            headers={"WWW-Authenticate": "Bearer", **_cors(request)})


CodecReader = Annotated[None, Depends(require_codec_reader)]


def _codec(request: Request) -> AesGcmCodec:
    s = _settings(request)
    codec = codec_from_key_spec(s.codec_keys, s.codec_active_key)
    if codec is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "no codec keys configured")
    return codec


def _cors(request: Request) -> dict[str, str]:
    ui = urlsplit(_settings(request).temporal_ui_url)
    origin = request.headers.get("origin", "")
    if not origin or origin != f"{ui.scheme}://{ui.netloc}":
        return {}
    return {"Access-Control-Allow-Origin": origin, "Access-Control-Allow-Credentials": "true",
            "Access-Control-Allow-Methods": "POST, OPTIONS",
            "Access-Control-Allow-Headers": ALLOWED_HEADERS, "Vary": "Origin"}


async def _read_payloads(request: Request) -> Payloads:
    try:
        return json_format.Parse(await request.body(), Payloads())
    except json_format.ParseError as err:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            f"body must be {{\"payloads\": [...]}}: {err}") from err


def _answer(request: Request, payloads: Payloads) -> Response:
    return Response(json_format.MessageToJson(payloads), media_type="application/json",
                    headers=_cors(request))


@router.options("/{operation}", include_in_schema=False)
def preflight(request: Request, operation: str) -> Response:
    return Response(status_code=status.HTTP_204_NO_CONTENT, headers=_cors(request))


@router.post("/encode")
async def encode(request: Request, _: CodecReader) -> Response:
    payloads = await _read_payloads(request)
    encoded = await _codec(request).encode(payloads.payloads)
    return _answer(request, Payloads(payloads=encoded))


@router.post("/decode")
async def decode(request: Request, _: CodecReader) -> Response:
    payloads = await _read_payloads(request)
    try:
        decoded = await _codec(request).decode(payloads.payloads)
    except (ValueError, InvalidTag) as err:  # unknown key id, tampered payload
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            str(err) or "payload failed authentication") from err
    return _answer(request, Payloads(payloads=decoded))
