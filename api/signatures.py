"""The generic webhook signature, Stripe's scheme with our header name:

    Relance-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>

Several v1 values may be given (secret rotation). A timestamp older or newer than
the tolerance is refused, so a captured request cannot be replayed later.
"""

from __future__ import annotations

import hashlib
import hmac
import time


class SignatureError(ValueError):
    pass


def sign(body: bytes, secret: str, timestamp: int | None = None) -> str:
    """The header value a gateway sends (also what the README's curl example uses)."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def verify(body: bytes, header: str | None, secret: str, tolerance_seconds: int,
           now: float | None = None) -> int:
    """Check the header against the raw body; returns its timestamp."""
    if not header:
        raise SignatureError("missing Relance-Signature header")
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == "v1" and value:
            candidates.append(value)
    if timestamp is None or not candidates:
        raise SignatureError("Relance-Signature must be t=<unix seconds>,v1=<hex digest>")
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_seconds:
        raise SignatureError(f"timestamp outside the {tolerance_seconds}s tolerance window")
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body,
                        hashlib.sha256).hexdigest()
    if not any(hmac.compare_digest(expected, c) for c in candidates):
        raise SignatureError("signature does not match the body")
    return timestamp
