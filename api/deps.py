"""Dependencies, in the full-stack template's idiom: `SessionDep`, `CurrentUser`,
`TemporalClientDep`, plus role guards. The engine and the Temporal client are
created once in the lifespan and read from `app.state`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine
from sqlmodel import Session
from temporalio.client import Client

from api.errors import ApiError
from ledger.crud import find_api_token
from ledger.models import Role
from settings import Settings


def get_engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


def get_db(request: Request) -> Iterator[Session]:
    # A sync generator: FastAPI runs it, and `def` routes using it, on its thread pool.
    with Session(get_engine(request), expire_on_commit=False) as session:
        yield session


def get_temporal(request: Request) -> Client:
    client: Client = request.app.state.temporal
    return client


def get_app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


EngineDep = Annotated[Engine, Depends(get_engine)]
SessionDep = Annotated[Session, Depends(get_db)]
TemporalClientDep = Annotated[Client, Depends(get_temporal)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]

bearer = HTTPBearer(auto_error=False, description="A token made by `relance token create`.")


@dataclass(frozen=True)
class ApiUser:
    name: str
    role: Role

    @property
    def is_manager(self) -> bool:
        return self.role in (Role.MANAGER, Role.ADMIN)


def get_current_user(
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> ApiUser:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise ApiError(401, "a bearer token is required (Authorization: Bearer <token>)")
    row = find_api_token(session=session, token=credentials.credentials)
    if row is None:
        raise ApiError(401, "unknown or revoked token")
    return ApiUser(name=row.name, role=Role(row.role))


CurrentUser = Annotated[ApiUser, Depends(get_current_user)]


def require_role(*roles: Role) -> Callable[[ApiUser], ApiUser]:
    allowed = set(roles) | {Role.ADMIN}

    def guard(user: CurrentUser) -> ApiUser:
        if user.role not in allowed:
            raise ApiError(403, f"role {user.role} may not do this; needs "
                                f"{' or '.join(sorted(allowed))}")
        return user

    return guard


AgentUser = Annotated[ApiUser, Depends(require_role(Role.AGENT, Role.MANAGER))]
ManagerUser = Annotated[ApiUser, Depends(require_role(Role.MANAGER))]
