"""The default provider: the outbox row *is* the message. Nothing leaves the
machine, so the whole product runs on one laptop; a finance team can read every
message in the ledger, or export the letters queued for registered post."""

from __future__ import annotations

from activities.providers.base import OutgoingMessage, ProviderReceipt


class OutboxProvider:
    def __init__(self, name: str = "outbox") -> None:
        self.name = name

    def send(self, message: OutgoingMessage) -> ProviderReceipt:
        return ProviderReceipt(provider_id=f"{self.name}-{message.outbox_id}")
