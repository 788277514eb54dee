"""The HTTP API: one Temporal client and one database engine for the process,
created in the lifespan and handed to routes as dependencies. The lifespan also
runs the payment reconciler, which re-signals payments Temporal did not get."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from temporalio.client import Client

from api.errors import install_error_handlers
from api.payments import reconcile_forever
from api.routes import (
    codec,
    customer_actions,
    customers,
    health,
    invoices,
    me,
    metrics,
    provider_events,
    reports,
    tasks,
    webhooks,
)
from dunning_client.converter import relance_data_converter
from ledger.db import make_engine
from settings import Settings, get_settings

DESCRIPTION = """Collections (relance, recouvrement amiable) on Temporal.

* **Payment gateways** post signed notifications to `/webhooks/*` (no token).
* **Agents** work their call-task worklist (`/tasks`) and read a customer's context.
* **Managers** list and steer invoices, read timelines, statements and reports, and
  act on a customer as a whole (`/customers/{id}/pause`, `/payment-plan`, `/payments`...).

Every other endpoint needs `Authorization: Bearer <token>` (`relance token create`).
Amounts are decimal strings with a currency, never floats. Errors always have the
shape `{"error": {"code", "message", "detail"}}`.
"""


async def connect_lazily(settings: Settings) -> Client:
    """The API starts even when Temporal is down: the client connects on first use,
    webhooks still commit payments, and the reconciler signals them later."""
    return await Client.connect(settings.temporal_address, namespace=settings.temporal_namespace,
                                data_converter=relance_data_converter, lazy=True)


def freeze_startup_heap() -> None:
    """Put what is alive once the API has started (modules, app, clients) out of
    the collector's reach. Otherwise every full collection during requests
    rescans it: about 100 ms a pass, the worklist's p99 in benchmark 6."""
    gc.collect()
    gc.freeze()


def create_app(settings: Settings | None = None, temporal: Client | None = None) -> FastAPI:
    """`settings` and `temporal` default to the environment's; tests pass their own."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        s = settings or get_settings()
        app.state.settings = s
        app.state.engine = make_engine(s.database_url)
        app.state.temporal = temporal or await connect_lazily(s)
        reconciler = None
        if s.reconcile_interval_seconds > 0:
            reconciler = asyncio.create_task(reconcile_forever(
                app.state.engine, app.state.temporal, s.reconcile_interval_seconds))
        freeze_startup_heap()
        try:
            yield
        finally:
            gc.unfreeze()  # an app stopped in a longer-lived process lets its heap go
            if reconciler is not None:
                reconciler.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reconciler
            app.state.engine.dispose()

    app = FastAPI(title="Relance", version="0.1.0", lifespan=lifespan, description=DESCRIPTION)
    install_error_handlers(app)
    for router in (health.router, me.router, webhooks.router, tasks.router, customers.router,
                   customer_actions.router, invoices.router, reports.router, metrics.router,
                   codec.router, provider_events.router):
        app.include_router(router)
    return app




app = create_app()
