"""Schemathesis over the OpenAPI schema: generated requests, valid and not, with
an admin token, against the app served by uvicorn on 127.0.0.1 (Temporal: the
test server). No response may be a 5xx. Its own SQLite ledger, seeded with a few
invoices and a call task, so generated steering calls never touch other tests'
workflows."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from datetime import date

import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given, settings
from sqlmodel import Session

from api.main import create_app
from ledger.db import make_engine, migrate
from ledger.models import CallTask, Role
from tests.api_support import api_settings, token_headers
from tests.factories import add_invoices


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def served_api(env, tmp_path_factory) -> Iterator[tuple[str, dict[str, str]]]:
    url = f"sqlite:///{tmp_path_factory.mktemp('schema') / 'relance.db'}"
    migrate(url)
    engine = make_engine(url)
    ids = add_invoices(engine, due=date(2026, 1, 15), amounts=[10000, 25000])
    with Session(engine) as session:
        session.add(CallTask(invoice_id=ids[0], customer_id=1, step_key="call"))
        session.commit()
    headers = token_headers(engine, Role.ADMIN, "schemathesis")
    target = env.client.service_client.config.target_host
    port = _free_port()
    app = create_app(api_settings(url, temporal_address=target, reconcile_interval_seconds=5))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", headers
    server.should_exit = True
    thread.join(timeout=10)
    engine.dispose()


def test_no_server_errors(served_api):
    base, headers = served_api
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    failures: list[str] = []
    statuses: set[int] = set()
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck),
                  database=None)
        def check(case: schemathesis.Case) -> None:
            response = case.call(base_url=base, headers=headers)
            statuses.add(response.status_code)
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path}: "
                                f"{response.status_code} {response.text[:200]}")

        check()
    assert operations >= 15
    assert failures == []
    # The token works and generated requests reach the handlers, valid or not.
    assert {200, 404, 422} <= statuses, statuses
