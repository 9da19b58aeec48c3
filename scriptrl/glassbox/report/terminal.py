"""Readable terminal output for evaluation results."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from scriptrl.evaluate import EvalResult
from scriptrl.success_rate import format_success


def make_console() -> Console:
    """A console that does not crop ids when output goes to a pipe or file (rich assumes 80 columns)."""
    console = Console()
    return console if console.is_terminal else Console(width=160)


def print_eval_result(result: EvalResult, console: Console | None = None) -> None:
    console = console or make_console()
    lo, hi = result.ci95
    table = Table(title=f"{result.env_label} · split {result.split} · gymnasium {result.gymnasium_version}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    rows = [
        ("episodes", str(len(result.returns))),
        ("mean return", f"{result.mean:.2f}"),
        ("95% CI", f"[{lo:.2f}, {hi:.2f}]"),
        *_success_rows(result),
        ("std", f"{result.std:.2f}"),
        ("median", f"{result.median:.2f}"),
        ("min / max", f"{result.min:.2f} / {result.max:.2f}"),
        ("episode ends", ", ".join(f"{k} {v}" for k, v in sorted(result.termination_counts.items()))),
        ("failures", str(len(result.failures))),
        ("env steps", f"{result.env_steps:,}"),
        ("wall seconds", f"{result.seconds:.2f}"),
        ("steps/s", f"{result.steps_per_second:,.0f}"),
    ]
    for k, v in rows:
        table.add_row(k, v)
    console.print(table)
    if result.failures:
        reasons: dict[str, list[int]] = {}
        for f in result.failures:
            reasons.setdefault(str(f["reason"]), []).append(f["seed"])
        for reason, seeds in reasons.items():
            shown = f"{seeds[:5]}{'…' if len(seeds) > 5 else ''}"
            console.print(
                f"[red]failed[/red] on {len(seeds)} episode(s) (seeds {shown}): {reason}",
                markup=True,
                highlight=False,
            )
    if result.success_note:
        console.print(f"[yellow]success:[/yellow] {result.success_note}", markup=True, highlight=False)
    weak = [k for k, v in result.isolation.items() if not v.startswith("on")]
    iso = "all layers on" if result.isolation and not weak else ("off: " + ", ".join(weak) if weak else "n/a")
    console.print(f"isolation: {iso}", highlight=False)


def _success_rows(result: EvalResult) -> list[tuple[str, str]]:
    """The success rate beside the mean return, and what success means, when it is defined."""
    rate = result.success
    if rate is None:
        return []
    return [("success", rate.percent())]


def print_train_result(result, console: Console | None = None) -> None:
    """The end of `scriptrl train`: the best program, its scores, and where the run lives."""
    from rich.syntax import Syntax

    console = console or make_console()
    console.print(f"[bold]stopped:[/bold] {result.stop_reason}", highlight=False)
    if result.best_source is None:
        console.print("no valid program was found", style="red")
    else:
        source = result.best_policy.read_text() if result.best_policy.exists() else result.best_source
        if console.is_terminal:
            console.print(Syntax(source, "python", line_numbers=False, word_wrap=True))
        else:  # a log or a pipe: the plain file, without lines padded to the console's width
            console.print(source.rstrip("\n"), markup=False, highlight=False, soft_wrap=True)
    rows = [
        ("best training", result.best_dev),
        ("best holdout", result.best_holdout),
        ("audit", result.best_audit),
    ]
    success = format_success(result.best_success, result.best_success_ci95)
    for k, v in rows:
        text = "-" if v is None else f"{v:.2f}"
        if k == "best holdout" and success:
            text += f" · {success}"
        console.print(f"{k:>14}: {text}", highlight=False)
    console.print(
        f"{'env steps':>14}: {result.env_steps:,} search + {result.eval_env_steps:,} holdout/audit",
        highlight=False,
    )
    console.print(
        f"{'wall time':>14}: {result.seconds:.1f} s over {result.iterations} iterations", highlight=False
    )
    console.print(
        f"{'model calls':>14}: {result.model_calls}"
        f" ({result.prompt_tokens + result.completion_tokens:,} tokens, ${result.cost_usd:.4f})",
        highlight=False,
    )
    if result.model_programs_joined is not None:
        champ = (
            "the champion is one"
            if result.model_champion
            else ("the champion descends from one" if result.model_ancestor else "none became champion")
        )
        console.print(
            f"{'model programs':>14}: {result.model_programs_joined} joined the population ({champ})",
            highlight=False,
        )
    console.print(f"{'run folder':>14}: {result.run_dir}", highlight=False)
    console.print(f"{'best policy':>14}: {result.best_policy}", highlight=False)
