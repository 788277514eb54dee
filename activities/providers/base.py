"""The small interface every channel provider implements (outbox, SendGrid, Twilio, post)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass
class Attachment:
    filename: str
    content: bytes
    mime_type: str = "application/pdf"


@dataclass
class OutgoingMessage:
    outbox_id: int
    channel: str
    recipient: str
    body: str
    subject: str | None = None
    html: str | None = None
    # Carried to the provider so its delivery events can be matched back.
    metadata: dict[str, str] = field(default_factory=dict)
    attachments: list[Attachment] = field(default_factory=list)


@dataclass
class ProviderReceipt:
    provider_id: str


class PermanentSendError(Exception):
    """The recipient is unusable (invalid address or number, opted out): never retry."""


class TransientSendError(Exception):
    """Rate limit or provider outage: retry with backoff, honouring Retry-After."""

    def __init__(self, reason: str, retry_after_seconds: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after_seconds = retry_after_seconds


class MessageProvider(Protocol):
    name: str

    def send(self, message: OutgoingMessage) -> ProviderReceipt: ...
