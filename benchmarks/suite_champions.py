"""The suite's champion-file check (issue 14: every champion program is at most 60 lines and reads
without the run folder): each search run's ``best_policy.py`` checked by
``scriptrl.glassbox.standalone`` into its row, and the table of them for RESULTS.md."""

from __future__ import annotations


def add_champion_files(rows: list[dict]) -> None:
    """Each search row gets its champion file's check (issue 14: at most 60 lines, runs without
    the run folder); a baseline has no program file and gets None."""
    from scriptrl.glassbox.standalone import check_run

    for r in rows:
        checked = check_run(r["run_dir"]) if r["kind"] == "scriptrl" else None
        r["champion_file"] = checked.to_dict() if checked else None


def champion_files_section(rows: list[dict]) -> list[str]:
    """The champion files' lines and self-containedness, one row per search run, and the verdict."""
    from scriptrl.glassbox.standalone import MAX_LINES

    checked = [r for r in rows if r.get("champion_file")]
    if not checked:
        return []
    out = [
        "",
        f"#### Champion files (at most {MAX_LINES} lines; runs alone, without the run folder)",
        "",
        f"| env | method | seed | lines of best_policy.py | within {MAX_LINES} lines | runs alone |",
        "|---|---|---|---|---|---|",
    ]
    for r in checked:
        c = r["champion_file"]
        alone = f"yes ({c['steps']} steps)" if c["self_contained"] else f"no: {c['reason']}"
        out.append(
            f"| {r['env']} | {r['method']} | {r.get('seed', 0)} | {c['lines']} | "
            f"{'yes' if c['within_60_lines'] else 'no'} | {alone.replace('|', '/')} |"
        )
    good = sum(
        r["champion_file"]["within_60_lines"] and r["champion_file"]["self_contained"] for r in checked
    )
    verdict = f"{good} of {len(checked)} champion files are at most {MAX_LINES} lines and run alone"
    if len(rows) > len(checked):
        n = len(rows) - len(checked)
        verdict += f"; {n} {'runs have' if n > 1 else 'run has'} no program file (baselines, or no champion)"
    out += ["", verdict + "."]
    return out
