"""The composition root: what each function is made of, from the environment the stack sets.

No AWS call is made here (clients are created, never used; sockets are off); the same apps on moto are
in tests/integration/test_bootstrap_moto.py.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from casewatch import bootstrap
from casewatch.adapters.cases_api import CasesApi
from casewatch.adapters.dynamodb_case_store import DynamoDbCaseStore
from casewatch.adapters.enriched_bus import EventBridgeEnrichedBus
from casewatch.adapters.scheduler_timers import SchedulerTimers
from casewatch.adapters.sns_notifier import SnsNotifier
from casewatch.adapters.sqs_dead_letters import SqsDeadLetters
from casewatch.bootstrap import Resources, aws_adapters, build_event_app
from casewatch.constants import (
    ENV_CONFIG,
    ENV_DEAD_LETTER_QUEUE_URL,
    ENV_EVENT_BUS,
    ENV_SCHEDULE_GROUP,
    ENV_SCHEDULER_ROLE_ARN,
    ENV_SLA_TABLE,
    ENV_SLA_TIMER_ARN,
    ENV_TOPIC_ARN,
)
from casewatch.errors import SettingsError
from casewatch.settings import Settings
from casewatch.topology import CASE_CHANGED, RELATED_ITEM_CREATED_FN
from tests.builders import repo_settings

REQUIRED = {
    ENV_SLA_TABLE: "casewatch-state",
    ENV_TOPIC_ARN: "arn:aws:sns:us-east-1:123456789012:casewatch",
    ENV_EVENT_BUS: "casewatch-enriched",
}
TIMERS = {
    ENV_SCHEDULE_GROUP: "casewatch-sla",
    ENV_SLA_TIMER_ARN: "arn:aws:lambda:us-east-1:123456789012:function:casewatch-sla-timer",
    ENV_SCHEDULER_ROLE_ARN: "arn:aws:iam::123456789012:role/casewatch-scheduler",
}
DLQ = {ENV_DEAD_LETTER_QUEUE_URL: "https://sqs.us-east-1.amazonaws.com/123456789012/casewatch-invalid"}


@pytest.fixture
def lambda_env(aws_env: None, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """An event-routed function's environment, as the stack sets it."""
    env = {ENV_CONFIG: repo_settings().runtime_json(), **REQUIRED, **TIMERS, **DLQ}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


def adapters(settings: Settings, env: dict[str, str], *, parks_events: bool) -> bootstrap.Adapters:
    return aws_adapters(settings, Resources.from_env(env), parks_events=parks_events)


# --- the resources ------------------------------------------------------------------------------------


def test_resources_come_from_the_environment() -> None:
    resources = Resources.from_env({**REQUIRED, **TIMERS, **DLQ})
    assert resources.state_table == "casewatch-state"
    assert not hasattr(resources, "idempotency_table")  # no idempotency table: claims live with the case
    assert resources.topic_arn == REQUIRED[ENV_TOPIC_ARN]
    assert resources.event_bus == "casewatch-enriched"
    assert resources.schedule_group == "casewatch-sla"
    assert resources.dead_letter_queue_url == DLQ[ENV_DEAD_LETTER_QUEUE_URL]
    bare = Resources.from_env(REQUIRED)
    assert (bare.schedule_group, bare.sla_timer_arn, bare.dead_letter_queue_url) == (None, None, None)


@pytest.mark.parametrize("missing", sorted(REQUIRED))
@pytest.mark.parametrize("value", [None, "", "   "], ids=["unset", "empty", "blank"])
def test_a_missing_resource_is_named(missing: str, value: str | None) -> None:
    env = {k: v for k, v in REQUIRED.items() if k != missing}
    if value is not None:
        env[missing] = value
    with pytest.raises(SettingsError, match=missing):
        Resources.from_env(env)


# --- the adapters ---------------------------------------------------------------------------------------


def test_the_aws_adapters_are_the_real_ones_on_the_named_resources(aws_env: None) -> None:
    built = adapters(repo_settings(), {**REQUIRED, **TIMERS, **DLQ}, parks_events=True)
    assert isinstance(built.cases, CasesApi)
    assert built.cases_slas is built.cases and built.search is built.cases  # one Cases adapter
    assert isinstance(built.store, DynamoDbCaseStore) and built.store.table_name == "casewatch-state"
    assert built.feed is built.store  # the feed's watermark lives in the state table too
    assert built.store.policies == bootstrap.policies(
        repo_settings()
    )  # a stored fold is checked against them
    assert isinstance(built.notifier, SnsNotifier) and built.notifier.topic_arn == REQUIRED[ENV_TOPIC_ARN]
    assert isinstance(built.bus, EventBridgeEnrichedBus) and built.bus.bus_name == "casewatch-enriched"
    assert isinstance(built.timers, SchedulerTimers)
    assert isinstance(built.dead_letters, SqsDeadLetters)


@pytest.mark.parametrize("missing", sorted(TIMERS))
def test_without_any_one_timer_resource_there_are_no_timers(aws_env: None, missing: str) -> None:
    env = {**REQUIRED, **{k: v for k, v in TIMERS.items() if k != missing}}
    assert adapters(repo_settings(), env, parks_events=False).timers is None


def test_functions_that_park_nothing_need_no_dead_letter_queue(aws_env: None) -> None:
    built = adapters(repo_settings(), {**REQUIRED, **TIMERS}, parks_events=False)
    assert built.dead_letters is None
    assert bootstrap.build_sla_timer_app(repo_settings(), built).timer is not None
    assert bootstrap.build_reconcile_app(repo_settings(), built).feed is not None
    with pytest.raises(SettingsError, match=ENV_DEAD_LETTER_QUEUE_URL):
        adapters(repo_settings(), {**REQUIRED, **TIMERS}, parks_events=True)


@pytest.mark.parametrize("spec", [CASE_CHANGED, RELATED_ITEM_CREATED_FN], ids=lambda s: s.name)
def test_an_event_app_needs_a_dead_letter_queue(aws_env: None, spec: Any) -> None:
    built = adapters(repo_settings(), REQUIRED, parks_events=False)
    with pytest.raises(SettingsError, match=spec.name):
        build_event_app(spec, repo_settings(), built)


# --- the apps ---------------------------------------------------------------------------------------------


def test_the_event_apps_apply_events_through_one_case_updater(aws_env: None) -> None:
    built = adapters(repo_settings(), {**REQUIRED, **TIMERS, **DLQ}, parks_events=True)
    apps = {
        spec.name: build_event_app(spec, repo_settings(), built)
        for spec in (CASE_CHANGED, RELATED_ITEM_CREATED_FN)
    }
    for name, app in apps.items():
        processor = app.processor
        updater = processor.updater
        assert updater.store is built.store and updater.timers is built.timers
        assert updater.notifier is built.notifier and updater.bus is built.bus
        assert updater.policies == bootstrap.policies(repo_settings()) != ()
        assert updater.breach_grace == repo_settings().breach_grace
        assert processor.enricher.cases is built.cases
        assert processor.dead_letters is built.dead_letters
        assert processor.function == name
    # Only related-item events can carry an SLA item without its definition: only they ask Cases.
    assert apps[RELATED_ITEM_CREATED_FN.name].processor.cases_slas is built.cases_slas
    assert apps[CASE_CHANGED.name].processor.cases_slas is None
    assert apps[CASE_CHANGED.name].processor.event_types == frozenset(CASE_CHANGED.event_types)


def test_the_timer_asks_cases_nothing_and_the_feed_searches(aws_env: None) -> None:
    settings = repo_settings()
    built = adapters(settings, {**REQUIRED, **TIMERS}, parks_events=False)
    timer = bootstrap.build_sla_timer_app(settings, built).timer
    assert timer.feed_period == settings.feed_period == timedelta(minutes=settings.reconcile_every_minutes)
    assert not hasattr(timer, "check")  # no per-SLA Cases read
    feed = bootstrap.build_reconcile_app(settings, built).feed
    assert (feed.search, feed.store, feed.feed) == (built.search, built.store, built.feed)
    assert feed.index_lag == settings.index_lag == timedelta(seconds=settings.search_index_lag_seconds)
    assert feed.first_lookback == settings.feed_period
    assert feed.domain_id == settings.domain_id
    assert feed.updater.policies == timer.updater.policies != ()
    assert len(feed.fields) <= 25  # SearchCases returns at most 25 fields
    assert {"last_updated_datetime", "last_closed_datetime", "created_datetime", "status"} <= set(feed.fields)
    assert "Sla" in feed.item_types


def test_apps_are_built_once_per_container_and_afresh_after_forget(lambda_env: dict[str, str]) -> None:
    app = bootstrap.event_app(CASE_CHANGED.name)
    assert bootstrap.event_app(CASE_CHANGED.name) is app
    assert bootstrap.event_app(RELATED_ITEM_CREATED_FN.name) is not app
    assert bootstrap.sla_timer_app() is bootstrap.sla_timer_app()
    assert bootstrap.reconcile_app() is bootstrap.reconcile_app()
    assert app.processor.settings.domain_id == "b7f3c2a1-5d4e-4f6a-9b8c-0d1e2f3a4b5c"
    bootstrap.forget_apps()
    assert bootstrap.event_app(CASE_CHANGED.name) is not app


def test_the_timer_and_reconcile_functions_start_without_a_dead_letter_queue(
    lambda_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENV_DEAD_LETTER_QUEUE_URL)
    assert bootstrap.sla_timer_app().timer is not None
    assert bootstrap.reconcile_app().feed is not None
    with pytest.raises(SettingsError, match=ENV_DEAD_LETTER_QUEUE_URL):
        bootstrap.event_app(CASE_CHANGED.name)


def test_a_missing_variable_is_named_on_the_first_invocation(
    lambda_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENV_SLA_TABLE)
    with pytest.raises(SettingsError, match=ENV_SLA_TABLE):
        bootstrap.event_app(CASE_CHANGED.name)
    with pytest.raises(SettingsError, match=ENV_SLA_TABLE):  # not cached: the next invocation says it again
        bootstrap.reconcile_app()


def test_missing_settings_are_named(lambda_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_CONFIG)
    with pytest.raises(SettingsError, match=ENV_CONFIG):
        bootstrap.sla_timer_app()


def test_an_unknown_function_name_is_refused(lambda_env: dict[str, str]) -> None:
    with pytest.raises((KeyError, ValueError, SettingsError)):
        bootstrap.event_app("no-such-function")


def test_adapters_can_be_replaced_one_by_one(aws_env: None) -> None:
    """The dataclass is the seam tests and the local pipeline use: swap one adapter, keep the rest."""
    built = adapters(repo_settings(), {**REQUIRED, **DLQ}, parks_events=True)
    from casewatch_dev.fakes.ports import ListDeadLetters

    swapped = replace(built, dead_letters=ListDeadLetters())
    app = build_event_app(CASE_CHANGED, repo_settings(), swapped)
    assert isinstance(app.processor.dead_letters, ListDeadLetters)
    assert app.processor.updater.notifier is built.notifier
