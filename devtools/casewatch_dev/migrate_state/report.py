"""What a run of `casewatch migrate-state` did: counts, failures with their reasons, and the differences
between the old table's SLA items and the fold the new records hold. One formatter per format: `as_dict`
(`--report json`) and `render` (text). Case ids, SLA keys and statuses only: never a case's values."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

SHOWN: Final = 10  # case ids listed per group in the text report (the JSON report lists all)


@dataclass(frozen=True, slots=True)
class SlaDifference:
    """An SLA whose state in the new record differs from the old table's item (policies changed since)."""

    case_id: str
    sla_key: str
    old: str  # "<status> until <target>", or "(absent)"
    new: str


@dataclass
class MigrationReport:
    source_table: str
    target_table: str
    dry_run: bool = False
    items_read: int = 0
    cases_read: int = 0
    migrated: int = 0  # (with --dry-run: would be)
    skipped_present: int = 0  # a record was in the new table already
    present_since_upgrade: list[str] = field(default_factory=list)  # of those: not written by a migration
    skipped_other_domain: int = 0
    skipped_empty: int = 0  # nothing to carry over: every item expired, or of an unknown shape
    failed: dict[str, str] = field(default_factory=dict)  # case id -> reason
    open_slas: int = 0  # open SLAs carried over (Active or Overdue)
    due_cases: int = 0  # migrated cases in the `due` index (an Active, running SLA)
    observations: int = 0  # observations carried over
    status_marks: int = 0
    expired_items: int = 0
    unknown_items: dict[str, int] = field(default_factory=dict)  # key shape -> count
    differences: list[SlaDifference] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed

    def add_unknown(self, shape: str, count: int = 1) -> None:
        self.unknown_items[shape] = self.unknown_items.get(shape, 0) + count

    def as_dict(self) -> dict[str, Any]:
        return {
            "source_table": self.source_table,
            "target_table": self.target_table,
            "dry_run": self.dry_run,
            "items_read": self.items_read,
            "cases_read": self.cases_read,
            "migrated": self.migrated,
            "skipped_present": self.skipped_present,
            "present_since_upgrade": sorted(self.present_since_upgrade),
            "skipped_other_domain": self.skipped_other_domain,
            "skipped_empty": self.skipped_empty,
            "failed": len(self.failed),
            "failures": [{"case_id": c, "reason": r} for c, r in sorted(self.failed.items())],
            "open_slas": self.open_slas,
            "due_cases": self.due_cases,
            "observations": self.observations,
            "status_marks": self.status_marks,
            "expired_items": self.expired_items,
            "unknown_items": sum(self.unknown_items.values()),
            "unknown_item_shapes": dict(sorted(self.unknown_items.items())),
            "sla_differences": [
                {"case_id": d.case_id, "sla": d.sla_key, "old": d.old, "new": d.new} for d in self.differences
            ],
        }

    def render(self) -> str:
        would = "would be " if self.dry_run else ""
        rows: list[tuple[str, object]] = [
            ("from", self.source_table),
            ("to", self.target_table + (" (dry run: nothing written)" if self.dry_run else "")),
            ("items read", self.items_read),
            ("cases read", self.cases_read),
            (f"  {would}migrated", self.migrated),
            ("  skipped: already in the new table", self.skipped_present),
            *_listed(
                "    of which written since the upgrade (not by a migration)", self.present_since_upgrade
            ),
            ("  skipped: another domain", self.skipped_other_domain),
            ("  skipped: nothing to carry over (expired)", self.skipped_empty),
            ("  failed", len(self.failed)),
            *[(f"    {c}", r) for c, r in sorted(self.failed.items())[:SHOWN]],
            *([("    ...", f"and {len(self.failed) - SHOWN} more")] if len(self.failed) > SHOWN else []),
            (f"open SLAs {would}carried over", self.open_slas),
            (f"cases {would}due a breach check", self.due_cases),
            (f"observations {would}carried over", self.observations),
            (f"status marks {would}carried over", self.status_marks),
            ("items past their TTL, skipped", self.expired_items),
            ("items of unknown shape, skipped", sum(self.unknown_items.values())),
            *[(f"    {shape}", n) for shape, n in sorted(self.unknown_items.items())],
            ("SLAs that fold differently now", len(self.differences)),
            *[(f"    {d.case_id} {d.sla_key}", f"{d.old} -> {d.new}") for d in self.differences[:SHOWN]],
            *(
                [("    ...", f"and {len(self.differences) - SHOWN} more")]
                if len(self.differences) > SHOWN
                else []
            ),
        ]
        width = max(len(label) for label, _ in rows)
        lines = [f"{label:<{width}}  {value}".rstrip() for label, value in rows]
        if self.failed:
            lines.append(
                "Failed cases were not written: fix the cause, then run again (cases migrated are skipped)."
            )
        return "\n".join(lines)


def _listed(label: str, case_ids: list[str]) -> list[tuple[str, object]]:
    if not case_ids:
        return []
    shown = sorted(case_ids)[:SHOWN]
    more = [("      ...", f"and {len(case_ids) - SHOWN} more")] if len(case_ids) > SHOWN else []
    return [(label, len(case_ids)), *[(f"      {c}", "") for c in shown], *more]


__all__ = ["MigrationReport", "SlaDifference"]
