from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from api.deps import CurrentUser
from api.errors import responses

router = APIRouter(prefix="/me", tags=["auth"])


class Me(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"name": "alice",
                                                               "role": "agent"}]})
    name: str
    role: str


@router.get("", response_model=Me, responses=responses(401))
def whoami(user: CurrentUser) -> Me:
    """The token's name and role."""
    return Me(name=user.name, role=user.role)
