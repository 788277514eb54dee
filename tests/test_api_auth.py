"""Bearer tokens and roles, over HTTP."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlmodel import Session

from ledger.crud import create_api_token, find_api_token, hash_token
from ledger.models import ApiToken, Role
from tests.api_support import api_settings, running_api, token_headers

MANAGER_ONLY = [("GET", "/invoices"), ("GET", "/invoices/1"), ("GET", "/invoices/1/timeline"),
                ("POST", "/invoices/1/pause"), ("POST", "/invoices/1/cancel"),
                ("POST", "/invoices/1/dispute"), ("GET", "/reports/aging"),
                ("GET", "/reports/dso"), ("GET", "/reports/stages"),
                ("GET", "/customers/1/statement")]


def test_tokens_are_stored_hashed_and_revocable(engine):
    with Session(engine) as session:
        row, token = create_api_token(session=session, name="hash-check", role=Role.AGENT)
        assert token not in row.token_hash and row.token_hash == hash_token(token)
        assert find_api_token(session=session, token=token) is not None
        with pytest.raises(ValueError, match="already exists"):
            create_api_token(session=session, name="hash-check", role=Role.AGENT)
        with pytest.raises(ValueError):
            create_api_token(session=session, name="bad-role", role="boss")
        stored = session.get(ApiToken, row.id)
        assert stored is not None
        stored.revoked_at = datetime.now(UTC)
        session.add(stored)
        session.commit()
        assert find_api_token(session=session, token=token) is None


async def test_missing_or_unknown_token_is_401_in_the_common_shape(env, engine, database_url):
    async with running_api(api_settings(database_url), env.client) as http:
        assert (await http.get("/health")).status_code == 200
        for headers in ({}, {"Authorization": "Bearer rlc_nope"}, {"Authorization": "Basic x"}):
            r = await http.get("/tasks", headers=headers)
            assert r.status_code == 401
            assert set(r.json()) == {"error"}
            assert r.json()["error"]["code"] == "unauthorized"
        me = await http.get("/me", headers=token_headers(engine, Role.AGENT, "auth-alice"))
        assert me.json() == {"name": "auth-alice", "role": "agent"}


@pytest.mark.parametrize(("method", "path"), MANAGER_ONLY)
async def test_agents_cannot_steer_or_read_reports(env, engine, database_url, method, path):
    agent = token_headers(engine, Role.AGENT)
    manager = token_headers(engine, Role.MANAGER)
    admin = token_headers(engine, Role.ADMIN)
    body = {"reason": "write_off"} if path.endswith("cancel") else {"reason": "x"}
    async with running_api(api_settings(database_url), env.client) as http:
        kw = {"json": body} if method == "POST" else {}
        r = await http.request(method, path, headers=agent, **kw)
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
        for allowed in (manager, admin):
            r = await http.request(method, path, headers=allowed, **kw)
            assert r.status_code != 403 and r.status_code < 500, r.text


async def test_validation_errors_share_the_shape(env, engine, database_url):
    manager = token_headers(engine, Role.MANAGER)
    async with running_api(api_settings(database_url), env.client) as http:
        r = await http.get("/invoices", params={"min_balance": "1.234"}, headers=manager)
        assert r.status_code == 422
        assert r.json()["error"]["code"] == "validation_error"
        assert r.json()["error"]["detail"][0]["loc"] == ["query", "min_balance"]
        r = await http.post("/invoices/1/cancel", json={"reason": "because"}, headers=manager)
        assert r.status_code == 422
        r = await http.get("/invoices/999999999", headers=manager)
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
