"""casewatch_dev.replay_diff without a replay: what a subscriber received, read into observations (case
data withheld, subjects masked), and the item-by-item difference of two observations.

The messages are the product's own: notifications built by the rules and published by `SnsNotifier` on
the fake SNS client, read back as the topic's raw-delivery subscriber receives them.
"""

from __future__ import annotations

import io
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from casewatch.adapters.sns_notifier import SnsNotifier
from casewatch.domain.notifications.rules import evaluate_case_event, evaluate_sla_signal
from casewatch.models.signals import SlaSignalKind
from casewatch.settings import Settings
from casewatch_dev.cli import main
from casewatch_dev.fakes.clients import FakeSns
from casewatch_dev.replay_diff.changes import Comparison, Side, diff
from casewatch_dev.replay_diff.command import EXIT_CHANGED, exit_code
from casewatch_dev.replay_diff.messages import dead_letter, mask, notification, numbered
from casewatch_dev.replay_diff.observed import Observation, SlaOutcome
from casewatch_dev.replay_diff.text import shown
from tests.builders import CASE_1, DOMAIN, PRIORITY, at, enriched, parsed, related_raw, sla_signal

TOPIC = "arn:aws:sns:us-east-1:123456789012:casewatch-notifications"
TITLE = "Refund not received for order 4711"
COMMENT = "Customer says the parcel never arrived"
SETTINGS = Settings.from_mapping(
    {
        "domain_id": DOMAIN,
        "field_names": {"priority": PRIORITY},
        "notification_rules": [
            {"name": "comment-added", "on": "comment_added"},
            {"name": "sla-breached", "on": "sla_breached"},
        ],
        "redact_fields": ["customer_id"],
    }
)


def received(notifications: list[Any]) -> list[dict[str, Any]]:
    """What the topic's raw-delivery subscriber receives for `notifications`."""
    sns = FakeSns()
    notifier = SnsNotifier(TOPIC, client=sns)  # type: ignore[arg-type]
    for n in notifications:
        notifier.publish(n)
    return sns.take()


def comment_message(
    title: str = TITLE, *, event_id: str = "ev-1", settings: Settings = SETTINGS
) -> dict[str, Any]:
    event = parsed(
        related_raw(CASE_1, at(5), "Comment", "cm-1", {"comment": {"body": COMMENT}}, event_id=event_id)
    )
    view = enriched(
        event, {"title": title, "reference_number": "78412093", "status": "open", "customer_id": "cust-99"}
    )
    (message,) = received(evaluate_case_event(event, view, settings))
    return message


def breach_message(target_minutes: float = 30) -> dict[str, Any]:
    signal = sla_signal(SlaSignalKind.BREACHED, name="first-response-high", target=at(target_minutes))
    (message,) = received(evaluate_sla_signal(signal, None, SETTINGS))
    return message


def observed(
    *messages: dict[str, Any], reveal: bool = False, sla: list[SlaOutcome] | None = None
) -> Observation:
    return Observation(
        reveal=reveal, notifications=numbered(notification(m) for m in messages), sla=sla or []
    )


def outcome(status: str, *, breached: bool, target: float = 30) -> SlaOutcome:
    return SlaOutcome(
        case_id=CASE_1,
        sla="policy#resolve-within-8h",
        name="resolve-within-8h",
        origin="policy",
        status=status,
        cycle=1,
        armed_at=at(0).isoformat(),
        target=at(target).isoformat(),
        completion=at(40).isoformat() if status in ("Met", "NotMet") else None,
        breached=breached,
        breach_at=at(target).isoformat() if breached else None,
    )


# --- reading what a subscriber received --------------------------------------------------------------


def test_a_notification_is_keyed_by_its_event_and_rule_and_its_subject_masked() -> None:
    item = notification(comment_message())
    assert item.key == "event|ev-1|comment-added"
    assert item.label == "comment-added" and item.case_id == CASE_1
    assert item.subject == 'Comment added: "<title>" (#<reference_number>)'
    assert item.safe["relatedItem.type"] == "Comment"
    assert item.safe["case.fields.title.source"] == "snapshot"
    assert "case.fields.title.value" in item.withheld  # type: ignore[operator]


def test_masking_covers_shortened_values_and_leaves_names_that_only_contain_a_value() -> None:
    long_title = "Ä very long title about a refund that never arrived at the customer's address"
    item = notification(comment_message(long_title))
    assert item.subject == 'Comment added: "<title>..." (#<reference_number>)'
    assert mask("SLA breached: first-response-high: case 1", {"priority": "high"}) == (
        "SLA breached: first-response-high: case 1"
    )
    assert (
        mask("Case priority changed to high: x", {"priority": "high"})
        == "Case priority changed to <priority>: x"
    )


def test_an_sla_notification_is_keyed_by_case_sla_and_kind_not_by_its_target() -> None:
    early, late = notification(breach_message(30)), notification(breach_message(10))
    assert early.key == late.key == f"sla|{CASE_1}|policy:first-response-high|sla_breached|sla-breached"
    changes = diff(observed(breach_message(30)), observed(breach_message(10)))
    (changed,) = changes["notifications"].changed
    assert not changes["notifications"].added and not changes["notifications"].removed
    paths = [d["path"] for d in changed["differences"]]
    assert "signal.targetTime" in paths
    assert paths.index("signal.targetTime") < paths.index("notificationId")  # the cause before the ids


def test_no_case_data_is_written_unless_log_case_data() -> None:
    hidden = json.dumps(observed(comment_message()).as_dict())
    for value in (TITLE, COMMENT, "78412093", "cust-99"):
        assert value not in hidden
    shown = json.dumps(observed(comment_message(), reveal=True).as_dict())
    assert TITLE in shown and COMMENT in shown


def test_repeats_of_a_key_are_numbered_and_a_repeat_shows_as_added() -> None:
    once, twice = observed(comment_message()), observed(comment_message(), comment_message())
    assert [m.key for m in twice.notifications] == ["event|ev-1|comment-added", "event|ev-1|comment-added#2"]
    changes = diff(once, twice)
    assert [e["key"] for e in changes["notifications"].added] == ["event|ev-1|comment-added#2"]


def test_dead_letters_are_keyed_by_function_and_event() -> None:
    parked = {
        "Body": json.dumps({"reason": "detail.case: missing", "function": "case-changed", "eventId": "e9"})
    }
    line = {
        "Body": json.dumps(
            {"reason": "not valid JSON", "function": "replay", "event": {"origin": "a.jsonl:3"}}
        )
    }
    failed = {
        "Body": json.dumps(
            {
                "requestContext": {"condition": "RetriesExhausted"},
                "requestPayload": {"id": "e7"},
                "reason": "x",
            }
        )
    }
    assert [dead_letter(m).key for m in (parked, line, failed)] == [
        "case-changed|e9",
        "replay|a.jsonl:3",
        "failure-destination|e7",
    ]


# --- the difference ----------------------------------------------------------------------------------


def test_a_changed_value_is_named_not_shown() -> None:
    changes = diff(observed(comment_message()), observed(comment_message("Another title")))
    (changed,) = changes["notifications"].changed
    assert {"path": "case.fields.title.value", "withheld": True} in changed["differences"]
    assert TITLE not in json.dumps(changes.as_dict())
    revealed = diff(
        observed(comment_message(), reveal=True), observed(comment_message("Another title"), reveal=True)
    )
    (changed,) = revealed["notifications"].changed
    assert {"path": "case.fields.title.value", "base": TITLE, "other": "Another title"} in changed[
        "differences"
    ]


def test_a_list_of_ids_is_one_value_and_a_missing_path_is_said_absent() -> None:
    redacting = Settings.from_mapping(
        {**SETTINGS.model_dump(mode="json"), "redact_fields": ["customer_id", "title"]}
    )
    changes = diff(observed(comment_message()), observed(comment_message(settings=redacting)))
    (changed,) = changes["notifications"].changed
    assert {"path": "case.redactedFieldIds", "base": ["customer_id"], "other": ["customer_id", "title"]} in (
        changed["differences"]
    )
    assert shown({"path": "p", "other": 1}, "base") == "(absent)"
    assert shown({"path": "p", "base": "a\nb"}, "base") == "a\\nb"


def test_written_observations_compare_their_case_data_by_digest() -> None:
    base = Observation.from_dict(json.loads(json.dumps(observed(comment_message()).as_dict())))
    same = Observation.from_dict(json.loads(json.dumps(observed(comment_message()).as_dict())))
    other = Observation.from_dict(json.loads(json.dumps(observed(comment_message("Another")).as_dict())))
    assert diff(base, same).empty
    (changed,) = diff(base, other)["notifications"].changed
    assert changed["differences"] == [{"path": "(case data)", "withheld": True}]


def test_sla_breaches_appear_and_vanish_per_case() -> None:
    met, breached = outcome("Met", breached=False, target=60), outcome("NotMet", breached=True, target=30)
    appeared = diff(observed(sla=[met]), observed(sla=[breached]))
    (entry,) = appeared.breaches()["appeared"]
    assert entry["case_id"] == CASE_1 and entry["differences"] == ["status", "target", "breached"]
    assert appeared.summary()["breaches"] == {"appeared": 1, "vanished": 0}
    vanished = diff(observed(sla=[breached]), observed(sla=[]))
    assert vanished.breaches()["vanished"][0]["sla"] == "policy#resolve-within-8h"


def test_exit_code_3_only_when_asked_and_something_differs() -> None:
    side = Side("base", "a.json", {"events": 1}, observed(comment_message()))
    other = Side("other", "b.json", {"events": 1}, observed())
    assert exit_code(Comparison.of(side, side), fail_on_change=True) == 0
    assert exit_code(Comparison.of(side, other), fail_on_change=False) == 0
    assert exit_code(Comparison.of(side, other), fail_on_change=True) == EXIT_CHANGED


def test_diff_command_reads_reports_with_items_and_refuses_others(tmp_path: Path) -> None:
    a, b, plain = tmp_path / "a.json", tmp_path / "b.json", tmp_path / "plain.json"
    a.write_text(json.dumps({"events": 1, "observed": observed(comment_message()).as_dict()}))
    b.write_text(json.dumps({"events": 1, "observed": observed().as_dict()}))
    plain.write_text(json.dumps({"events": 1}))
    out = io.StringIO()
    assert main(["diff", str(a), str(b), "--report", "json", "--fail-on-change"], out=out) == EXIT_CHANGED
    report = json.loads(out.getvalue())
    assert report["summary"]["notifications"] == {"added": 0, "removed": 1, "changed": 0}
    assert main(["diff", str(a), str(plain)], out=io.StringIO()) == 2
    assert main(["diff", str(a), str(a)], out=io.StringIO()) == 0


@pytest.mark.parametrize(
    "argv",
    [
        ["replay", "events/archive", "--fail-on-change"],  # needs --compare
        ["replay", "events/archive", "--items"],  # needs --report json
        ["replay", "--archive", "casewatch", "--compare", "other.json"],  # offline only
    ],
)
def test_replay_flags_that_do_not_go_together_are_usage_errors(argv: list[str]) -> None:
    assert main(argv, out=io.StringIO()) == 2


def test_observation_round_trips_through_json() -> None:
    first = observed(comment_message(), breach_message(), sla=[outcome("Met", breached=False)])
    first.start, first.end = at(0).isoformat(), (at(0) + timedelta(hours=1)).isoformat()
    again = Observation.from_dict(json.loads(json.dumps(first.as_dict())))
    assert again.as_dict() == first.as_dict()
    assert diff(first, again).empty
