"""``scriptrl export``: the best program of a run as one file a person can ship, headed by a policy card.

Why a card: a policy file that travels without its run folder should still say what it
was tested on and how well it did, so the header records the environment and its
version, the seed protocol, the holdout and audit scores with their confidence
intervals, which generators and models wrote it, what that cost, and which scriptrl
exported it when. The body is the program exactly as evaluated: it imports only the
standard library and numpy (the sandbox's allow-list), and it still passes scriptrl's
static checks, so ``scriptrl eval`` and ``train --init`` accept the exported file as is.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from scriptrl import seeds
from scriptrl.errors import UserError
from scriptrl.store import BEST_POLICY_NAME, RunStore, config_value, write_output

_HEADER_ID = re.compile(r"^# program id: (\d+)\s*$", re.MULTILINE)


def champion_id(store: RunStore) -> int | None:
    """The program the run reports: the last promotion, else what best_policy.py names, else the top
    scores."""
    for event in reversed(store.events("promotion")):
        pid = (event.get("data") or {}).get("id")
        if isinstance(pid, int):
            return pid
    best = store.run_dir / BEST_POLICY_NAME
    if best.is_file():
        m = _HEADER_ID.search(best.read_text(encoding="utf-8", errors="replace")[:4000])
        if m:
            return int(m.group(1))
    for split in ("holdout", store.selection_split()):
        top = store.top_programs(split, 1)
        if top:
            return int(top[0]["id"])
    return None


def lineage_ids(store: RunStore, pid: int) -> list[int]:
    """Every ancestor of ``pid`` and itself, oldest first (ids only grow, so id order is birth order)."""
    seen: set[int] = set()
    stack = [pid]
    while stack:
        p = stack.pop()
        if p in seen:
            continue
        seen.add(p)
        try:
            parents = store.program(p).get("parents") or []
        except KeyError:
            continue
        stack.extend(int(x) for x in parents if isinstance(x, int))
    return sorted(seen)


def _one_line(value: Any) -> str:
    """Card values come from the run database; a newline would turn the rest of a comment into code."""
    return " ".join(str(value).replace("\x00", " ").split())


def _score(row: dict | None) -> str:
    if not row or row.get("mean") is None:
        return "not evaluated"
    text = f"{row['mean']:.2f}"
    if row.get("ci_lo") is not None and row.get("ci_hi") is not None:
        text += f" (95% CI {row['ci_lo']:.2f} to {row['ci_hi']:.2f})"
    seeds = row.get("seeds") or []
    if seeds:
        text += f" over {row['episodes']} episodes, seeds {min(seeds)}-{max(seeds)}"
    return text


def policy_card(store: RunStore, pid: int) -> dict[str, str]:
    """The card's fields, in the order they are printed."""
    from scriptrl import __version__

    cfg = store.config
    prog = store.program(pid)
    holdout = store.best_evaluation(pid, "holdout")
    audit = store.best_evaluation(pid, "audit")
    dev = store.selection_score(pid)
    any_eval = holdout or audit or dev or {}
    env = any_eval.get("env_id") or config_value(cfg, "env", "env_id") or "unknown"
    lineage = lineage_ids(store, pid)
    programs = {p: store.program(p) for p in lineage}
    calls = [c for c in store.calls() if c.get("program_id") in programs]
    totals = store.totals()
    generators = sorted({programs[p]["generator"] for p in lineage})
    models = sorted({c["model"] for c in calls if c.get("model")})

    def rng(name: str, default: tuple[int, int]) -> str:
        lo, hi = cfg.get(name) or default
        return f"{lo}-{hi - 1}"

    card = {
        "environment": f"{env} (gymnasium {any_eval.get('gymnasium_version') or 'unknown'})",
        "seed protocol": (
            f"dev seeds {rng('dev', seeds.DEV)} select programs;"
            f" holdout seeds {rng('holdout', seeds.HOLDOUT)} confirm a new best (the reported score);"
            f" audit seeds {rng('audit', seeds.AUDIT)}"
            " are evaluated once at the end and never select anything"
        ),
        "holdout": _score(holdout),
        "audit": _score(audit),
        "dev": _score(dev),
        "program": f"#{pid}, sha256 {prog['sha256'][:16]}, {len(lineage)} programs in its lineage",
        "written by": ", ".join(generators)
        + (f"; models: {', '.join(models)}" if models else "; no language model"),
        "lineage cost": (
            f"{len(calls)} generator calls, {sum(c['prompt_tokens'] for c in calls):,} prompt +"
            f" {sum(c['completion_tokens'] for c in calls):,} completion tokens,"
            f" ${sum(c['cost_usd'] for c in calls):.4f}"
        ),
        "run cost": (
            f"{totals['calls']} generator calls, {totals['prompt_tokens']:,} prompt +"
            f" {totals['completion_tokens']:,} completion tokens, ${totals['cost_usd']:.4f},"
            f" {totals['env_steps']:,} env steps"
        ),
        "run": f"{store.run_dir} (created {store.meta().get('created', 'unknown')})",
        "exported by": f"scriptrl {__version__} on {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
    }
    notice = any_eval.get("notice")
    if notice:
        card["notice"] = notice
    return {k: _one_line(v) for k, v in card.items()}


def export_policy(
    run_dir: str | Path,
    output: str | Path,
    program_id: int | None = None,
    shield: str | None = None,
    fallback: str | None = None,
) -> Path:
    """Write the run's best program (or ``program_id``) with its policy card to ``output``.

    With ``shield`` (a properties file), the program is wrapped in a runtime monitor
    that enforces them with a fallback action; the card says how often it intervened
    on holdout episodes.
    """
    from scriptrl.program import check_source

    with RunStore.open(run_dir) as store:
        pid = program_id if program_id is not None else champion_id(store)
        if pid is None:
            raise UserError(f"{run_dir} has no evaluated program yet (let the run promote one, then export)")
        try:
            prog = store.program(pid)
        except KeyError:
            raise UserError(
                f"{run_dir} has no program {pid} (`scriptrl show {run_dir}` lists its programs)"
            ) from None
        problems = check_source(prog["source"])
        if problems:
            raise UserError(f"program {pid} cannot be exported: {problems[0]}")
        card = policy_card(store, pid)
        env = card["environment"].split(" (")[0]
    body = prog["source"]
    if shield:
        body, card["shield"], record = _shielded(
            body, env, shield, fallback, pid, str(Path(output).expanduser())
        )
        _record_shield(run_dir, record)
    width = max(len(k) for k in card)
    lines = [
        "# " + "-" * 76,
        "# Policy card (exported by scriptrl; the program below needs only Python and numpy)",
        "#",
    ]
    lines += [f"# {k + ':':<{width + 1}} {v}" for k, v in card.items()]
    lines += [
        "#",
        "# use:     from <this module> import policy   # or Policy, for a stateful program",
        "#          action = policy(obs)               # obs exactly as the environment returns it",
        f"# re-check: scriptrl eval {Path(output).name} --env {env} --split holdout",
        "# " + "-" * 76,
        "",
        "",
    ]
    text = "\n".join(lines) + body.rstrip("\n") + "\n"
    return write_output(Path(output).expanduser(), text)


def _record_shield(run_dir: str | Path, record: dict) -> None:
    """The holdout intervention count, kept in the run (the report shows it; the card travels alone)."""
    from scriptrl.glassbox.report.shield import SHIELD_EVENT

    with RunStore.open(run_dir) as store, store.transaction():
        store.add_event(SHIELD_EVENT, record)


def _shielded(
    source: str, env_id: str, shield: str, fallback: str | None, pid: int, output: str
) -> tuple[str, str, dict]:
    """The program wrapped in its runtime shield, the card line saying how often it intervened on
    holdout, and the measurement as the run records it."""
    from scriptrl.envs import resolve_env
    from scriptrl.glassbox.prove.shield import interventions, load_shield, shield_source
    from scriptrl.glassbox.report.shield import shield_record
    from scriptrl.program import check_source

    spec = load_shield(shield, fallback)
    body = shield_source(source, spec)
    problems = check_source(body)
    if problems:
        raise UserError(f"the shielded program does not pass scriptrl's checks: {problems[0]}")
    holdout = seeds.SeedSplits().seeds("holdout", 20)
    n = interventions(body, source, resolve_env(env_id), holdout)
    names = "; ".join(p.name for p in spec.properties)
    line = (
        f"{len(spec.properties)} properties enforced at run time ({names});"
        f" fallback action {spec.fallback!r}; intervened at {n['interventions']} of {n['steps']} steps"
        f" on holdout seeds {n['seeds'][0]}-{n['seeds'][1]};"
        " each intervention is recorded in the Policy instance's log"
    )
    record = shield_record(pid, [p.name for p in spec.properties], spec.fallback, n, output)
    return body, _one_line(line), record
