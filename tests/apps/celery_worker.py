"""The Celery app of the tests' worker process (``celery -A tests.apps.celery_worker worker``).

Broker and queue come from ``CST_TEST_CELERY_BROKER`` / ``CST_TEST_CELERY_QUEUE``; the web side
builds the same app with :func:`make_celery` and sends the tasks by name.
"""

from __future__ import annotations

import logging
import os

from celery import Celery

from cst_chassis.celery import init_celery

log = logging.getLogger("tasks")


def make_celery(broker: str, queue: str) -> Celery:
    app = Celery("cst_test", broker=broker)
    app.conf.task_default_queue = queue
    app.conf.broker_connection_retry_on_startup = True
    init_celery(app)
    return app


app = make_celery(
    os.environ.get("CST_TEST_CELERY_BROKER", "memory://"),
    os.environ.get("CST_TEST_CELERY_QUEUE", "cst-test"),
)


@app.task(name="cst_test.record")
def record(n: int) -> None:
    log.info("task %d ran", n)


@app.task(name="cst_test.relay")
def relay(n: int) -> None:
    log.info("relay %d ran", n)
    record.delay(n)
