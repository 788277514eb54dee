"""Prometheus scrape endpoint of the API: Relance's counters and the ledger's
invoices by stage (the worker serves its own counters on its metrics port)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from observability.metrics import watch_ledger

router = APIRouter(tags=["metrics"])


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    # Sync route: FastAPI runs it in its thread pool, the ledger query included.
    watch_ledger(request.app.state.engine)
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
