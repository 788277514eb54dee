"""Encryption of Temporal payloads, so customer data never sits in clear in the
event history (workflow inputs, activity arguments and results, update notes).

AES-256-GCM with a random 96-bit nonce per payload. The key id travels in the
payload's metadata, so after a rotation (a new active key) histories written
with an older key still decrypt as long as that key stays in the key ring.
Search attributes are not payloads of the history body and are *not* encrypted:
they must stay free of personal data (Relance indexes stage, customer reference,
amount and next action date only).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import os
from collections.abc import Mapping, Sequence

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import DataConverter, PayloadCodec

ENCODING = b"binary/encrypted"
KEY_ID_META = "encryption-key-id"
NONCE_BYTES = 12


class CodecKeyError(ValueError):
    """A key ring that cannot be used, or a payload whose key is not in it."""


def parse_key_ring(spec: str) -> dict[str, bytes]:
    """`kid1:base64key,kid2:base64key` -> {kid: key}. Keys are 16, 24 or 32 bytes."""
    ring: dict[str, bytes] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        kid, sep, encoded = item.partition(":")
        if not sep or not kid:
            raise CodecKeyError(f"codec key {item[:8]}...: expected 'key-id:base64-key'")
        try:
            key = base64.b64decode(encoded, validate=True)
        except binascii.Error as err:
            raise CodecKeyError(f"codec key {kid!r} is not valid base64") from err
        if len(key) not in (16, 24, 32):
            raise CodecKeyError(f"codec key {kid!r} is {len(key)} bytes; AES needs 16, 24 or 32")
        if kid in ring:
            raise CodecKeyError(f"codec key id {kid!r} appears twice")
        ring[kid] = key
    return ring


def new_key() -> str:
    """A fresh base64 AES-256 key, for `RELANCE_CODEC_KEYS`."""
    return base64.b64encode(AESGCM.generate_key(bit_length=256)).decode()


class AesGcmCodec(PayloadCodec):
    """Encrypts with the active key; decrypts with whichever key id a payload names."""

    def __init__(self, keys: Mapping[str, bytes], active_key_id: str) -> None:
        if active_key_id not in keys:
            raise CodecKeyError(f"active codec key {active_key_id!r} is not in the key ring")
        self._ciphers = {kid: AESGCM(key) for kid, key in keys.items()}
        self.active_key_id = active_key_id

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.encrypt(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.decrypt(p) if p.metadata.get("encoding") == ENCODING else p
                for p in payloads]

    def encrypt(self, payload: Payload) -> Payload:
        kid = self.active_key_id
        nonce = os.urandom(NONCE_BYTES)
        # The key id is authenticated too: a payload cannot be relabelled.
        sealed = self._ciphers[kid].encrypt(nonce, payload.SerializeToString(), kid.encode())
        return Payload(metadata={"encoding": ENCODING, KEY_ID_META: kid.encode()},
                       data=nonce + sealed)

    def decrypt(self, payload: Payload) -> Payload:
        kid = payload.metadata.get(KEY_ID_META, b"").decode()
        cipher = self._ciphers.get(kid)
        if cipher is None:
            raise CodecKeyError(f"payload encrypted with unknown key id {kid!r}")
        data = payload.data
        clear = cipher.decrypt(data[:NONCE_BYTES], data[NONCE_BYTES:], kid.encode())
        return Payload.FromString(clear)


def codec_from_key_spec(keys: str, active_key_id: str) -> AesGcmCodec | None:
    """The codec the settings ask for, or None when no key is configured."""
    if not keys.strip():
        return None
    ring = parse_key_ring(keys)
    return AesGcmCodec(ring, active_key_id or next(iter(ring)))


def with_codec(converter: DataConverter, codec: PayloadCodec | None) -> DataConverter:
    return converter if codec is None else dataclasses.replace(converter, payload_codec=codec)
