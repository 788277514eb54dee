"""The HTTP API: one Temporal client and one database engine for the process,
created in the lifespan and handed to routes as dependencies."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api.routes import health, provider_events
from ledger.db import make_engine
from settings import get_settings
from workflows.start import connect


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings = get_settings()
    app.state.settings = settings
    app.state.engine = make_engine(settings.database_url)
    app.state.temporal = await connect(settings)
    yield
    app.state.engine.dispose()


app = FastAPI(title="Relance", version="0.1.0", lifespan=lifespan,
              description="Collections (relance, recouvrement amiable) on Temporal.")
app.include_router(health.router)
app.include_router(provider_events.router)
