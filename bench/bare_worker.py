"""The bare worker: same tuning as `worker.build_worker` (the same settings),
the bare workflow and its no-op activity. In a process of its own for the memory
benchmark: `python -m bench.bare_worker <task-queue>` (Temporal address from
RELANCE_TEMPORAL_ADDRESS); the Relance side runs the product's `python -m worker`."""

from __future__ import annotations

import asyncio
import logging
import sys
from concurrent.futures import ThreadPoolExecutor

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Worker

from bench.bare import BarePaymentWorkflow, BareWorkflow, noop
from settings import Settings, get_settings

log = logging.getLogger("relance.bench.worker")


def build_bare_worker(client: Client, settings: Settings, executor: ThreadPoolExecutor,
                      task_queue: str) -> Worker:
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[BareWorkflow, BarePaymentWorkflow],
        activities=[noop],
        activity_executor=executor,
        max_concurrent_activities=settings.max_concurrent_activities,
        max_concurrent_workflow_tasks=settings.max_concurrent_workflow_tasks,
        max_cached_workflows=settings.max_cached_workflows,
    )


async def run_bare_worker(task_queue: str) -> None:
    settings = get_settings()
    # Not `dunning_client.start.connect`: the bare process imports none of Relance.
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
