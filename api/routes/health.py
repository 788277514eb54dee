from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy import text

from api.deps import SessionDep

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: str = "ok"


@router.get("/health", response_model=Health)
def health(session: SessionDep) -> Health:
    """Liveness: the database answers. No token needed."""
    session.exec(text("SELECT 1"))  # type: ignore[call-overload]
    return Health()
