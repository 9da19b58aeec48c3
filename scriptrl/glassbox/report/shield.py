"""The report's runtime-shield figure: how often the shield intervened on holdout episodes.

``scriptrl export --shield`` measures that (the shielded program's holdout episodes, each
visited state asked of the unshielded program, both in the sandbox) and writes it on the
policy card of the exported file, which the run folder never sees. So export also records the
measurement as a ``shield`` event in the run's database, and the report shows every shield
exported from the run, newest first, with its properties, fallback and intervention rate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: Event kind export records a shield's holdout measurement under.
SHIELD_EVENT = "shield"


@dataclass
class ShieldRow:
    program: int | None
    properties: str
    fallback: str
    interventions: int
    steps: int
    seeds: str
    output: str
    when: float

    @property
    def rate(self) -> str:
        return "-" if self.steps <= 0 else f"{100.0 * self.interventions / self.steps:.2f} %"


def shield_record(pid: int, names: list[str], fallback: Any, measured: dict, output: str) -> dict:
    """The event data export stores: what was enforced and what the holdout measurement found."""
    return {
        "program": pid,
        "properties": list(names),
        "fallback": fallback,
        "interventions": int(measured["interventions"]),
        "steps": int(measured["steps"]),
        "seeds": list(measured["seeds"]),
        "output": output,
    }


def shield_rows(store) -> list[ShieldRow]:
    """Every shield exported from this run, newest first (malformed events are skipped)."""
    rows = []
    for ev in reversed(store.events(SHIELD_EVENT)):
        d = ev.get("data") or {}
        try:
            lo, hi = (int(x) for x in d["seeds"])
            rows.append(
                ShieldRow(
                    program=d.get("program") if isinstance(d.get("program"), int) else None,
                    properties="; ".join(str(p) for p in d.get("properties") or []),
                    fallback=str(d.get("fallback")),
                    interventions=int(d["interventions"]),
                    steps=int(d["steps"]),
                    seeds=f"{lo}–{hi}",
                    output=str(d.get("output") or "-"),
                    when=float(ev["created"]),
                )
            )
        except (KeyError, TypeError, ValueError):
            continue
    return rows
