"""Local HTTP stand-ins of provider REST APIs (SendGrid, Twilio) on 127.0.0.1:
they record every request exactly as the real SDK sent it and answer with
queued responses (the provider's documented success by default)."""

from __future__ import annotations

import json
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class CannedResponse:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


class StandIn:
    def __init__(self, default: CannedResponse) -> None:
        self.default = default
        self.queued: deque[CannedResponse] = deque()
        self.requests: list[RecordedRequest] = []
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                stand_in.requests.append(RecordedRequest(
                    self.command, self.path, dict(self.headers.items()),
                    self.rfile.read(length)))
                reply = stand_in.queued.popleft() if stand_in.queued else stand_in.default
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            do_GET = do_POST = do_PUT = do_DELETE = _handle

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        port = self.server.server_address[1]
        return f"http://127.0.0.1:{port}"

    def reply(self, status: int, body: Any = b"", headers: dict[str, str] | None = None) -> None:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.queued.append(CannedResponse(status, raw, {"Content-Type": "application/json",
                                                        **(headers or {})}))

    def __enter__(self) -> StandIn:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def sendgrid_standin() -> StandIn:
    return StandIn(CannedResponse(202, b"", {"X-Message-Id": "sg-msg-0001"}))


def twilio_standin() -> StandIn:
    body = json.dumps({"sid": "SM0123456789abcdef0123456789abcdef", "status": "queued",
                       "account_sid": "AC123", "to": "+33612345678"}).encode()
    return StandIn(CannedResponse(201, body, {"Content-Type": "application/json"}))
