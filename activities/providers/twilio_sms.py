"""SMS through Twilio's Messages API, with the official `twilio` SDK.

Every message carries a status callback URL so Twilio's delivery reports come
back to `/webhooks/twilio/status`, matched by the message SID stored as the
outbox row's provider id.
"""

from __future__ import annotations

from typing import Any

from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from activities.providers.base import (
    OutgoingMessage,
    PermanentSendError,
    ProviderReceipt,
    TransientSendError,
)
from activities.providers.errors import RETRYABLE_STATUSES, retry_after_seconds

TWILIO_API = "https://api.twilio.com"
# Twilio error codes that mean this recipient cannot receive our SMS.
# 21211 invalid 'To', 21214 not reachable, 21408 region not enabled, 21610 replied STOP,
# 21612 unreachable carrier, 21614 not a mobile number, 30003-30006 unreachable/blocked.
RECIPIENT_ERROR_CODES = frozenset({21211, 21214, 21217, 21401, 21408, 21610, 21612, 21614,
                                   30003, 30004, 30005, 30006})


class _HttpClient(TwilioHttpClient):
    """Twilio's own HTTP client, pointed at another base URL (a regional edge, a
    test stand-in) and keeping the last response for its Retry-After header."""

    def __init__(self, base_url: str, timeout: float) -> None:
        super().__init__(timeout=timeout)
        self.base_url = base_url.rstrip("/")
        self.response: Response | None = None

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Response:
        if self.base_url and url.startswith(TWILIO_API):
            url = self.base_url + url[len(TWILIO_API):]
        self.response = super().request(method, url, *args, **kwargs)
        return self.response


class TwilioSmsProvider:
    name = "twilio"

    def __init__(self, account_sid: str, auth_token: str, *, from_number: str,
                 status_callback_url: str = "", base_url: str = "",
                 timeout_seconds: float = 30) -> None:
        if not (account_sid and auth_token):
            raise ValueError("RELANCE_TWILIO_ACCOUNT_SID and RELANCE_TWILIO_AUTH_TOKEN are "
                             "required for the twilio provider")
        self.account_sid, self.auth_token = account_sid, auth_token
        self.from_number, self.status_callback_url = from_number, status_callback_url
        self.base_url, self.timeout = base_url, timeout_seconds

    def send(self, message: OutgoingMessage) -> ProviderReceipt:
        # One HTTP client per send: the SDK keeps its last response on the client,
        # and activities run on several threads.
        http = _HttpClient(self.base_url, self.timeout)
        client = Client(self.account_sid, self.auth_token, http_client=http)
        params: dict[str, Any] = {"to": message.recipient, "from_": self.from_number,
                                  "body": message.body}
        if self.status_callback_url:
            params["status_callback"] = self.status_callback_url
        try:
            sent = client.messages.create(**params)
        except TwilioRestException as err:
            headers = http.response.headers if http.response is not None else None
            raise classify(err, headers) from err
        except OSError as err:
            raise TransientSendError(f"twilio unreachable: {err}") from err
        return ProviderReceipt(provider_id=str(sent.sid))


def classify(err: TwilioRestException, headers: Any) -> PermanentSendError | TransientSendError:
    if err.status in RETRYABLE_STATUSES:
        return TransientSendError(f"twilio {err.status}: {err.msg}", retry_after_seconds(headers))
    if err.code in RECIPIENT_ERROR_CODES:
        return PermanentSendError(f"twilio error {err.code}: {err.msg}")
    return TransientSendError(f"twilio {err.status} (code {err.code}): {err.msg}")
