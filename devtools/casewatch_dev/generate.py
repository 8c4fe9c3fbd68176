"""`casewatch generate`: a realistic working day of Cases events, produced by the Cases emulator.

A seeded script plays a contact centre's day against the emulator through the real boto3 client
(cases created from contacts, assigned, commented, put on hold, closed, some reopened or deleted;
Cases SLA items on some), so the archive holds exactly the events Cases would publish under the
configured `includedData`. Then the delivery is made realistic: a few duplicate deliveries, a few
late ones, and a few malformed lines. Written next to the archive (`state/cases.json`): the domain as
it was before the day, and Cases' ground truth as a timeline (each case after each change). The local
pipeline applies the timeline as its virtual clock passes each change, so GetCase, SearchRelatedItems
and reconciliation see Cases as it was at that moment — also when an event was never delivered.
"""

from __future__ import annotations

import argparse
import json
import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from casewatch.settings import Settings, load_cdk_context

DEFAULT_DAY = datetime(2026, 11, 23, tzinfo=UTC)
# Beside the archive, in a sub-directory so that `validate`/`replay` of the directory skip it.
STATE_FILE = Path("state") / "cases.json"
ACCOUNT = "123456789012"
REGION = "us-east-1"
INSTANCE = "f1e2d3c4-b5a6-4978-8a9b-0c1d2e3f4a5b"
TEMPLATE_ID = "4d2c9e8f-1a3b-4c5d-8e7f-6a5b4c3d2e1f"
PORTAL = "Acme self-service portal"
PROFILES = f"arn:aws:profile:{REGION}:{ACCOUNT}:domains/acme/profiles"
TITLES = (
    "Refund not received",
    "Order arrived damaged",
    "Cannot log in to my account",
    "Wrong item delivered",
    "Subscription charged twice",
    "Change delivery address",
    "Warranty claim",
    "Invoice copy needed",
)
COMMENTS = (
    "Called the customer back, waiting for the bank reference.",
    "Escalated to the payments team.",
    "Customer confirmed the new address.",
    "Replacement shipped, tracking sent by e-mail.",
)


@dataclass(order=True)
class Action:
    at: datetime
    seq: int
    kind: str = field(compare=False)
    case: str = field(compare=False)
    params: dict[str, Any] = field(compare=False, default_factory=dict)


@dataclass
class GeneratedDay:
    events: list[dict[str, Any]]  # as delivered (with duplicates), valid ones only
    lines: list[str]  # the archive's lines (including malformed ones)
    state: dict[str, Any]  # the emulator's final state
    facts: dict[str, Any]  # what the script did (for tests and the README)


def _uid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _agent(rng: random.Random) -> str:
    return f"arn:aws:connect:{REGION}:{ACCOUNT}:instance/{INSTANCE}/agent/{_uid(rng)}"


def plan_day(settings: Settings, cases: int, rng: random.Random, day: datetime) -> list[Action]:
    """The day's script: one timeline of actions, several per case."""
    agents = [_agent(rng) for _ in range(6)]
    queues = [f"arn:aws:connect:{REGION}:{ACCOUNT}:instance/{INSTANCE}/queue/{_uid(rng)}" for _ in range(2)]
    priority = settings.field_id("priority")
    actions: list[Action] = []
    seq = 0

    def add(at: datetime, kind: str, case: str, **params: Any) -> None:
        nonlocal seq
        seq += 1
        actions.append(Action(at, seq, kind, case, params))

    for n in range(cases):
        key = f"case-{n:03d}"
        created = day + timedelta(hours=8, seconds=rng.randrange(0, 8 * 3600 + 1800))
        agent = rng.choice(agents)
        fields = {
            "status": "open",
            "title": rng.choice(TITLES),
            "summary": f"Customer contacted us about order {rng.randrange(10000, 99999)}.",
            "customer_id": f"{PROFILES}/{_uid(rng).replace('-', '')}",
            "assigned_queue": rng.choice(queues),
            priority: rng.choices(["high", "normal", "low"], [3, 5, 2])[0],
        }
        by_portal = rng.random() < 0.2
        add(created, "create", key, fields=fields, performer=None if by_portal else agent)
        if not by_portal:
            add(created + timedelta(seconds=2), "contact", key, performer=agent)
        if rng.random() < 0.35:
            add(created + timedelta(seconds=3), "cases_sla", key, minutes=240)
        t = created + timedelta(minutes=rng.uniform(1, 20))
        owner = rng.choice(agents)
        add(t, "update", key, fields={"assigned_user": ("user", owner)}, performer=owner)
        if rng.random() < 0.85:
            add(created + timedelta(minutes=rng.uniform(5, 75)), "comment", key, performer=owner)
        if rng.random() < 0.2:
            add(created + timedelta(minutes=rng.uniform(10, 90)), "file", key, performer=owner)
        if rng.random() < 0.4:
            hold = created + timedelta(minutes=rng.uniform(20, 120))
            add(hold, "update", key, fields={"status": "pending-customer"}, performer=owner)
            add(
                hold + timedelta(minutes=rng.uniform(10, 90)),
                "update",
                key,
                fields={"status": "open"},
                performer=PORTAL,
            )
        if rng.random() < 0.8:
            closed = created + timedelta(minutes=rng.uniform(135, 600))
            add(closed, "update", key, fields={"status": "closed"}, performer=owner)
            if rng.random() < 0.12:
                reopened = closed + timedelta(minutes=rng.uniform(10, 60))
                add(reopened, "update", key, fields={"status": "open"}, performer=PORTAL)
                add(
                    reopened + timedelta(minutes=rng.uniform(20, 120)),
                    "update",
                    key,
                    fields={"status": "closed"},
                    performer=owner,
                )
        if rng.random() < 0.04:
            add(created + timedelta(hours=rng.uniform(9, 10)), "delete", key)
    return sorted(actions)


def _performer(value: str | None) -> dict[str, Any]:
    if value is None:
        return {"customEntity": PORTAL}
    if value.startswith("arn:"):
        return {"userArn": value}
    return {"customEntity": value}


def _union(value: Any) -> dict[str, Any]:
    if isinstance(value, tuple) and value[0] == "user":
        return {"userArnValue": value[1]}
    return {"stringValue": value}


def run_day(settings: Settings, cases: int, seed: int, day: datetime = DEFAULT_DAY) -> GeneratedDay:
    """Play the day on a fresh emulator and return the archive's lines and the final state."""
    from casewatch_dev.clock import VirtualClock
    from casewatch_dev.emulator import CasesEmulator

    rng = random.Random(seed)  # noqa: S311 - reproducible synthetic data, not security
    actions = plan_day(settings, cases, rng, day)
    clock = VirtualClock(day + timedelta(hours=7))
    emitted: list[dict[str, Any]] = []
    facts: dict[str, Any] = {"cases": cases, "seed": seed, "actions": {}}
    # In process (`client(in_process=True)`): no server, no socket; the same answers as over HTTP.
    emu = CasesEmulator(clock=clock, seed=seed, on_event=emitted.append, account_id=ACCOUNT, region=REGION)
    domain = settings.domain_id
    emu.seed_domain(domain_id=domain, name="acme-support")
    emu.seed_field(domain, "priority", "SingleSelect", field_id=settings.field_id("priority"))
    emu.seed_template(domain, "Customer issue", template_id=TEMPLATE_ID)
    emu.set_event_configuration(
        domain,
        fields=[settings.field_id(f) for f in settings.event_fields],
        auto_include=settings.auto_include_fields,
        include_content=settings.include_content,
    )
    client = emu.client(in_process=True)
    state = emu.export_state()  # the domain before the day: no cases yet
    timeline: list[dict[str, Any]] = []
    case_ids: dict[str, str] = {}
    deleted: set[str] = set()
    for action in actions:
        if action.case in deleted:  # the script may plan changes after a deletion: Cases refuses them
            continue
        clock.set(action.at)
        facts["actions"][action.kind] = facts["actions"].get(action.kind, 0) + 1
        performer = _performer(action.params.get("performer"))
        case_id = case_ids.get(action.case)
        if action.kind == "create":
            created = client.create_case(
                domainId=domain,
                templateId=TEMPLATE_ID,
                fields=[{"id": k, "value": _union(v)} for k, v in action.params["fields"].items()],  # type: ignore[misc]
                performedBy=performer,  # type: ignore[arg-type]
            )
            case_ids[action.case] = created["caseId"]
            timeline.append({"at": _iso(action.at), "case": emu.case_record(domain, created["caseId"])})
            continue
        assert case_id is not None
        if action.kind == "update":
            client.update_case(
                domainId=domain,
                caseId=case_id,
                fields=[{"id": k, "value": _union(v)} for k, v in action.params["fields"].items()],  # type: ignore[misc]
                performedBy=performer,  # type: ignore[arg-type]
            )
        elif action.kind == "delete":
            client.delete_case(domainId=domain, caseId=case_id)
            deleted.add(action.case)
            timeline.append({"at": _iso(action.at), "deleted": case_id})
            continue
        else:
            client.create_related_item(
                domainId=domain,
                caseId=case_id,
                type=_related_type(action.kind),  # type: ignore[arg-type]
                content=_related_content(action.kind, action.params, rng, domain),  # type: ignore[arg-type]
                performedBy=performer,  # type: ignore[arg-type]
            )
        timeline.append({"at": _iso(action.at), "case": emu.case_record(domain, case_id)})
    state["timeline"] = timeline
    lines, delivered = _deliver(emitted, rng)
    facts["events_emitted"] = len(emitted)
    facts["deliveries"] = len(delivered)
    facts["malformed_lines"] = len(lines) - len(delivered)
    return GeneratedDay(events=delivered, lines=lines, state=state, facts=facts)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _related_type(kind: str) -> str:
    return {"contact": "Contact", "comment": "Comment", "file": "File", "cases_sla": "Sla"}[kind]


def _related_content(kind: str, params: dict[str, Any], rng: random.Random, domain: str) -> dict[str, Any]:
    if kind == "contact":
        return {
            "contact": {
                "contactArn": f"arn:aws:connect:{REGION}:{ACCOUNT}:instance/{INSTANCE}/contact/{_uid(rng)}"
            }
        }
    if kind == "comment":
        return {"comment": {"body": rng.choice(COMMENTS), "contentType": "Text/Plain"}}
    if kind == "file":
        return {"file": {"fileArn": f"arn:aws:cases:{REGION}:{ACCOUNT}:domain/{domain}/file/{_uid(rng)}"}}
    return {
        "sla": {
            "slaInputConfiguration": {
                "name": "Resolution",
                "type": "CaseField",
                "fieldId": "status",
                "targetFieldValues": [{"stringValue": "closed"}],
                "targetSlaMinutes": params["minutes"],
            }
        }
    }


def _deliver(emitted: list[dict[str, Any]], rng: random.Random) -> tuple[list[str], list[dict[str, Any]]]:
    """EventBridge-like delivery: mostly in order, ~3% late by up to 2 min, ~3% twice, ~1% malformed."""
    timed: list[tuple[datetime, int, dict[str, Any]]] = []
    for n, event in enumerate(emitted):
        at = datetime.fromisoformat(event["time"].replace("Z", "+00:00"))
        delay = timedelta(seconds=rng.uniform(0.2, 1.5))
        if rng.random() < 0.03:
            delay += timedelta(seconds=rng.uniform(20, 120))
        timed.append((at + delay, n, event))
        if rng.random() < 0.03:
            timed.append((at + delay + timedelta(seconds=rng.uniform(1, 300)), n, event))
    timed.sort(key=lambda item: (item[0], item[1]))
    lines: list[str] = []
    delivered: list[dict[str, Any]] = []
    for _, _, event in timed:
        if rng.random() < 0.01:
            lines.append(json.dumps(event, separators=(",", ":"))[: rng.randrange(20, 200)])
        delivered.append(event)
        lines.append(json.dumps(event, separators=(",", ":")))
    return lines, delivered


def write_day(generated: GeneratedDay, out: Path, name: str) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    archive = out / f"{name}.jsonl"
    state = out / STATE_FILE
    state.parent.mkdir(parents=True, exist_ok=True)
    archive.write_text("\n".join(generated.lines) + "\n")
    state.write_text(json.dumps(generated.state, separators=(",", ":"), sort_keys=True) + "\n")
    return archive, state


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "generate",
        help="generate a realistic day of Cases events (an archive for replay)",
        description="Play a contact centre's day on the Cases emulator and write the events it publishes.",
    )
    parser.add_argument("--cases", type=int, default=40, help="cases opened during the day (default 40)")
    parser.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    parser.add_argument("--out", default="events/archive", help="output directory (default events/archive)")
    parser.add_argument("--config", default="cdk.json", help="cdk.json whose `casewatch` settings to use")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, out: TextIO) -> int:
    settings = load_cdk_context(args.config)
    generated = run_day(settings, args.cases, args.seed)
    archive, state = write_day(generated, Path(args.out), f"day-{DEFAULT_DAY:%Y-%m-%d}")
    print(
        f"wrote {archive} ({len(generated.lines)} lines: {generated.facts['events_emitted']} events, "
        f"{generated.facts['deliveries'] - generated.facts['events_emitted']} duplicate deliveries, "
        f"{generated.facts['malformed_lines']} malformed) and {state}",
        file=out,
    )
    return 0
