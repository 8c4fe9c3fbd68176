"""The process environment the local pipeline runs in: dummy credentials (nothing reaches a real account),
the resource names the stack would set, quiet logs, and EMF metric lines discarded."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from casewatch.adapters.clients import reset_clients
from casewatch.bootstrap import forget_apps
from casewatch.constants import (
    ENV_CASES_ENDPOINT,
    ENV_CONFIG,
    ENV_DEAD_LETTER_QUEUE_URL,
    ENV_EVENT_BUS,
    ENV_SCHEDULE_GROUP,
    ENV_SCHEDULER_ROLE_ARN,
    ENV_SLA_TABLE,
    ENV_SLA_TIMER_ARN,
    ENV_TOPIC_ARN,
)
from casewatch.settings import Settings, get_settings
from casewatch.topology import SLA_TIMER
from casewatch_dev.pipeline.context import REGION, LocalResources


def configure_environment(
    settings: Settings,
    r: LocalResources,
    cases_url: str,
    urls: dict[str, str],
    *,
    topic_arn: str | None = None,
) -> None:
    """The environment the stack gives the functions (the moto backend's handlers read it)."""
    os.environ.update(
        {
            ENV_CONFIG: settings.runtime_json(),
            ENV_SLA_TABLE: r.state_table,
            ENV_TOPIC_ARN: topic_arn or r.topic_arn,
            ENV_EVENT_BUS: r.bus_name,
            ENV_SCHEDULE_GROUP: r.schedule_group,
            ENV_SCHEDULER_ROLE_ARN: r.scheduler_role_arn,
            ENV_SLA_TIMER_ARN: r.function_arn(SLA_TIMER),
            ENV_DEAD_LETTER_QUEUE_URL: urls.get(r.invalid_queue, r.queue_url(r.invalid_queue)),
            ENV_CASES_ENDPOINT: cases_url,
        }
    )
    forget_cached()


@contextmanager
def local_environment() -> Iterator[None]:
    """Dummy credentials and region, restored afterwards: nothing can reach a real account."""
    keys = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "POWERTOOLS_SERVICE_NAME": "casewatch",
        "POWERTOOLS_METRICS_NAMESPACE": "Casewatch",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_DEV": "false",
        # Local runs print a report on stdout: the functions' EMF metric lines are discarded (see
        # `EMF_OUTPUT`) and their logs go to stderr at WARNING, unless the user asks for more
        # (CASEWATCH_LOCAL_LOG_LEVEL=INFO). Metrics are not disabled: Powertools then never clears its
        # buffer and prints it when 100 values pile up.
        "POWERTOOLS_LOG_LEVEL": os.environ.get("CASEWATCH_LOCAL_LOG_LEVEL", "WARNING"),
    }
    touched = {
        *keys,
        ENV_CONFIG,
        ENV_SLA_TABLE,
        ENV_TOPIC_ARN,
        ENV_EVENT_BUS,
        ENV_SCHEDULE_GROUP,
        ENV_SCHEDULER_ROLE_ARN,
        ENV_SLA_TIMER_ARN,
        ENV_DEAD_LETTER_QUEUE_URL,
        ENV_CASES_ENDPOINT,
    }
    saved = {k: os.environ.get(k) for k in touched}
    os.environ.update(keys)
    restore_logs = _route_logs_to_stderr(
        keys["POWERTOOLS_LOG_LEVEL"], saved["POWERTOOLS_LOG_LEVEL"] or "INFO"
    )
    try:
        yield
    finally:
        restore_logs()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class _Discard:
    """A text sink for the EMF lines Powertools prints (in Lambda they go to CloudWatch)."""

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        return None


EMF_OUTPUT: Any = _Discard()


def _route_logs_to_stderr(level: str, previous_level: str) -> Callable[[], None]:
    """Send the functions' logs to stderr at `level`; returns how to put things back (to
    `previous_level`: the logger may have been created inside this environment, at `level`)."""

    from casewatch.observability import logger

    logger.setLevel(level)
    handler = logger.registered_handler
    previous_stream = handler.setStream(sys.stderr) if isinstance(handler, logging.StreamHandler) else None

    def restore() -> None:
        logger.setLevel(previous_level)
        if previous_stream is not None and isinstance(handler, logging.StreamHandler):
            handler.setStream(previous_stream)

    return restore


def forget_cached() -> None:
    """Clients, settings and apps are cached per container: start afresh."""
    reset_clients()
    get_settings.cache_clear()
    forget_apps()


__all__ = ["EMF_OUTPUT", "configure_environment", "forget_cached", "local_environment"]
