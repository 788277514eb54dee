"""A bare worker in a process of its own, for the memory benchmark:
`python -m bench.worker_proc <task-queue>` (Temporal address from RELANCE_TEMPORAL_ADDRESS).
The Relance side runs the product's own worker, `python -m worker`."""

from __future__ import annotations

import asyncio
import logging
import sys
from concurrent.futures import ThreadPoolExecutor

from bench.bare import build_bare_worker
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from settings import get_settings

log = logging.getLogger("relance.bench.worker")


async def run_bare_worker(task_queue: str) -> None:
    settings = get_settings()
    # Not `workflows.start.connect`: the bare process imports none of Relance.
    client = await Client.connect(settings.temporal_address,
                                  namespace=settings.temporal_namespace,
                                  data_converter=pydantic_data_converter)
    with ThreadPoolExecutor(max_workers=settings.max_concurrent_activities) as executor:
        worker = build_bare_worker(client, settings, executor, task_queue)
        log.info("worker polling %s on %s", task_queue, settings.temporal_address)
        await worker.run()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    asyncio.run(run_bare_worker(sys.argv[1]))
