from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import Engine, text

router = APIRouter(tags=["health"])

READY_TIMEOUT_SECONDS = 5.0


def _ping_database(engine: Engine) -> None:
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))


@router.get("/health")
async def health(request: Request) -> dict[str, str]:
    """Liveness: the database answers."""
    await asyncio.to_thread(_ping_database, request.app.state.engine)
    return {"status": "ok"}


@router.get("/health/ready")
async def ready(request: Request) -> JSONResponse:
    """Readiness: the database and Temporal both answer; 503 naming what does not."""
    checks: dict[str, str] = {}
    try:
        await asyncio.wait_for(asyncio.to_thread(_ping_database, request.app.state.engine),
                               READY_TIMEOUT_SECONDS)
        checks["database"] = "ok"
    except Exception as err:  # noqa: BLE001 - any failure means not ready
        checks["database"] = f"unavailable: {type(err).__name__}"
    try:
        ok = await asyncio.wait_for(request.app.state.temporal.service_client.check_health(),
                                    READY_TIMEOUT_SECONDS)
        checks["temporal"] = "ok" if ok else "unavailable: not serving"
    except Exception as err:  # noqa: BLE001
        checks["temporal"] = f"unavailable: {type(err).__name__}"
    healthy = all(v == "ok" for v in checks.values())
    return JSONResponse({"status": "ok" if healthy else "unavailable", "checks": checks},
                        status_code=200 if healthy else 503)
