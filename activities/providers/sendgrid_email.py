"""Email through SendGrid's v3 mail send, with the official `sendgrid` SDK.

Plain text and HTML, reply-to, attachments (the mise en demeure PDF) and custom
args (invoice, step, outbox id) that SendGrid echoes in every Event Webhook
event, so a bounce is matched back to its outbox row.
"""

from __future__ import annotations

import base64
import json

from python_http_client.exceptions import HTTPError
from sendgrid import SendGridAPIClient
from sendgrid.helpers.mail import (
    Attachment,
    CustomArg,
    Disposition,
    Email,
    FileContent,
    FileName,
    FileType,
    Mail,
    ReplyTo,
    To,
)

from activities.providers.base import (
    OutgoingMessage,
    PermanentSendError,
    ProviderReceipt,
    TransientSendError,
)
from activities.providers.errors import RETRYABLE_STATUSES, retry_after_seconds


class SendGridEmailProvider:
    name = "sendgrid"

    def __init__(self, api_key: str, *, from_email: str, from_name: str = "",
                 reply_to: str = "", base_url: str = "https://api.sendgrid.com",
                 timeout_seconds: float = 30) -> None:
        if not api_key:
            raise ValueError("RELANCE_SENDGRID_API_KEY is required for the sendgrid provider")
        self.client = SendGridAPIClient(api_key=api_key, host=base_url.rstrip("/"))
        self.client.client.timeout = timeout_seconds
        self.from_email, self.from_name, self.reply_to = from_email, from_name, reply_to

    def mail(self, message: OutgoingMessage) -> Mail:
        mail = Mail(from_email=Email(self.from_email, self.from_name or None),
                    to_emails=To(message.recipient), subject=message.subject or "",
                    plain_text_content=message.body,
                    html_content=message.html or None)
        if self.reply_to:
            mail.reply_to = ReplyTo(self.reply_to)
        for attachment in message.attachments:
            mail.add_attachment(Attachment(
                FileContent(base64.b64encode(attachment.content).decode("ascii")),
                FileName(attachment.filename), FileType(attachment.mime_type),
                Disposition("attachment")))
        for key, value in sorted(message.metadata.items()):
            mail.add_custom_arg(CustomArg(key, value))
        return mail

    def send(self, message: OutgoingMessage) -> ProviderReceipt:
        try:
            response = self.client.send(self.mail(message))
        except HTTPError as err:
            raise classify(err) from err
        except OSError as err:  # connection refused, timeout, DNS
            raise TransientSendError(f"sendgrid unreachable: {err}") from err
        message_id = response.headers.get("X-Message-Id") if response.headers else None
        return ProviderReceipt(provider_id=message_id or f"sendgrid-{message.outbox_id}")


def classify(err: HTTPError) -> PermanentSendError | TransientSendError:
    status = int(err.status_code)
    body = err.body.decode("utf-8", "replace") if isinstance(err.body, bytes) else str(err.body)
    if status in RETRYABLE_STATUSES:
        return TransientSendError(f"sendgrid {status}: {body[:200]}",
                                  retry_after_seconds(err.headers))
    if status == 400 and _recipient_rejected(body):
        return PermanentSendError(f"sendgrid rejected the recipient: {body[:200]}")
    # Credentials, sender identity, payload: a configuration problem an operator
    # fixes; the activity keeps retrying with backoff meanwhile.
    return TransientSendError(f"sendgrid {status}: {body[:200]}")


def _recipient_rejected(body: str) -> bool:
    try:
        errors = json.loads(body).get("errors", [])
    except (ValueError, AttributeError):
        return False
    return any(".to." in str(e.get("field") or "") or str(e.get("field") or "").endswith(".to")
               for e in errors if isinstance(e, dict))
