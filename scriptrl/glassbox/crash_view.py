"""The console section of ``explain`` for failed episodes: one table of last decisions per crash."""

from __future__ import annotations

from typing import Any

#: Failed episodes shown in the console unless asked otherwise (all of them are in ``--json``).
DEFAULT_SHOWN = 10


def _num(x: Any) -> str:
    return f"{x:.4g}" if isinstance(x, float) else str(x)


def action_text(d: dict) -> str:
    """``4 SLOWER`` for a named discrete action, else the action itself (or why there was none)."""
    if d.get("error"):
        return str(d["error"])[:60]
    return f"{d['action']} {d['action_name']}" if d.get("action_name") else _num(d["action"])


def condition_text(c: dict) -> str:
    """``line 33: u < -0.273 is True (u = -1.204)``: a tested condition and the numbers it compared."""
    text = f"line {c['line']}: {c['expr']} is {c['value']}"
    shown = [f"{v['expr']} = {_num(v['value'])}" for v in c.get("compared") or [] if v["expr"] != c["expr"]]
    if not shown and c.get("compared"):
        shown = [_num(v["value"]) for v in c["compared"]]  # a bare reading tested for truth
    return text + (f" ({', '.join(shown)})" if shown else "")


def observation_text(obs: Any) -> str:
    if isinstance(obs, dict):
        return " ".join(f"{k}={_num(v)}" for k, v in obs.items())
    return str(obs)[:200]


def ending_text(crash: dict) -> str:
    how = {"terminated": "terminated", "truncated": "ran to the time limit", "failure": "was ended"}
    text = f"{how.get(crash['end'], crash['end'])} after {crash['length']} steps"
    text += f", return {crash['return']:.2f}"
    if crash.get("success") is False:
        text += ", not successful"
    if crash.get("reason"):
        text += f" ({crash['reason']})"
    return text


def print_crashes(crashes: list[dict], console: Any, shown: int = DEFAULT_SHOWN) -> None:
    """Worst first: how each failed episode ended, then its last decisions with line and values."""
    from rich.table import Table
    from rich.text import Text

    if not crashes:
        return
    console.print(Text(f"Failed episodes: {len(crashes)} (worst first)", style="bold"))
    for crash in crashes[:shown]:
        n = len(crash["decisions"])
        title = f"seed {crash['seed']}: {ending_text(crash)}; " + (
            f"its last {n} decisions" if n != 1 else "its last decision"
        )
        table = Table(title=title, title_justify="left", title_style="red")
        for col, justify in (
            ("step", "right"),
            ("action", "left"),
            ("line", "right"),
            ("code", "left"),
            ("conditions tested (values compared)", "left"),
            ("observation", "left"),
        ):
            table.add_column(col, justify=justify)  # type: ignore[arg-type]
        for d in crash["decisions"]:
            table.add_row(
                str(d["step"]),
                action_text(d),
                str(d["line"] or "-"),
                Text(d["code"] or "(no return reached)"),
                Text("\n".join(condition_text(c) for c in d["conditions"]) or "-"),
                Text(observation_text(d["observation"]), style="dim"),
            )
        console.print(table)
        if crash.get("gif"):
            console.print(Text(f"GIF: {crash['gif']}", style="dim"))
    if len(crashes) > shown:
        console.print(Text(f"... and {len(crashes) - shown} more failed episodes (all of them in --json)"))
