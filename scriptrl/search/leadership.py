"""The leader, the champion, holdout and audit: how a population's best becomes the reported policy.

The leader is confirmed on fresh training episodes in chunks (a confirmation that dethrones it
stops paying for it), then earns a holdout evaluation by the rule in ``search/champion.py``.
Audit is evaluated once, when the run finishes, and never selects.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from scriptrl.evaluate import EvalResult
from scriptrl.evaluate.executors import EvalJob
from scriptrl.search import stopping
from scriptrl.search.champion import Champion, deserves_holdout
from scriptrl.search.population import Member
from scriptrl.store import policy_header
from scriptrl.success_rate import SuccessRate

if TYPE_CHECKING:
    from scriptrl.search.loop import Search

CONFIRM_CHUNK = 10  # fresh episodes per confirmation step of a leader


def lead(s: Search) -> None:
    """Confirm the population's leader on fresh episodes, then give it holdout if it earned it."""
    leader = current_leader(s)
    for _ in range(12):  # in chunks: a confirmation that dethrones the leader stops paying for it
        if leader is None or leader.n >= s.cfg.confirm_episodes:
            break
        seeds = s.stream.draw(min(CONFIRM_CHUNK, s.cfg.confirm_episodes - leader.n))
        played = s.bank.play([(leader.id, s._source(leader.id), seeds)], stage="full")[0]
        s.population.add_returns(leader.id, [p.ret for p in played])
        leader = current_leader(s)
    if leader is None or leader.n < s.cfg.confirm_episodes:
        return
    s.best_dev, s.best_dev_id = leader.score, leader.id
    current = s.population.member(s.champion.id) if s.champion else None
    if deserves_holdout(leader, s.champion, current, s.target):
        confirm(s, leader)


def current_leader(s: Search) -> Member | None:
    """The population's best; but when that is a champion that meets the target on training
    episodes and not on holdout, the best member not yet seen on holdout (among equals at the
    target, holdout decides)."""
    best = s.population.best()
    c = s.champion
    if best is None or c is None or best.id != c.id or s.target is None:
        return best
    if c.holdout >= s.target or best.score < s.target:
        return best
    checked = {e["program_id"] for e in s.store.evaluations(split="holdout")}
    others = [m for i in s.population.islands for m in i.members if m.id not in checked]
    return max(others, key=lambda m: (m.score, -m.id), default=best)


def confirm(s: Search, leader: Member) -> None:
    """Evaluate the leader on holdout; it becomes the champion if it does at least as well."""
    source = s._source(leader.id)
    holdout = split_eval(s, leader.id, source, "holdout")
    if s.champion is None or holdout.mean >= s.champion.holdout:
        s.champion = Champion(
            leader.id,
            leader.score,
            holdout.mean,
            list(holdout.ci95),
            leader.n,
            leader.variance_of_mean(),
            success=holdout.success_rate,
            success_ci95=list(holdout.success_ci95) if holdout.success_ci95 is not None else None,
        )
        s.store.write_best_policy(source, header(s))
        s.store.add_event("promotion", {"iteration": s.iteration, **s.champion.to_dict()})


def finish(s: Search, stop: stopping.Stop) -> None:
    """The last leader's holdout, the champion's audit, and the stop event with its verdict."""
    leader = s.population.best()
    if (
        leader is not None
        and leader.n >= s.cfg.confirm_episodes
        and (s.champion is None or s.champion.id != leader.id)
    ):
        confirm(s, leader)  # the last leader's holdout, whatever its margin
    audit = None
    if s.champion is not None:
        source = s._source(s.champion.id)
        audit = split_eval(s, s.champion.id, source, "audit").mean
        s.champion.audit = audit
        s.store.write_best_policy(source, header(s, audit))
    info = stopping.verdict(stop, s.champion, s.target, s.idle_rounds, s.cfg.target_success)
    s.stop_reason = stopping.describe(stop, info, s.target, s.cfg.target_success)
    s._save()
    s.store.add_event("stop", {"reason": s.stop_reason, "iteration": s.iteration, **info})


def split_eval(s: Search, pid: int, source: str, split: str) -> EvalResult | StoredEvaluation:
    """A holdout or audit evaluation, once per program: a stored one is read back, not rerun."""
    rows = s.store.evaluations(program_id=pid, stage=split)
    if rows:
        return StoredEvaluation.of(rows[-1])
    seeds = s.cfg.splits().seeds(split)
    res = s.executor.map([EvalJob(source, s.env, tuple(seeds), split)])[0]
    s.store.add_evaluation(pid, split, split, res)
    return res


def header(s: Search, audit: float | None = None) -> dict:
    champ = s.champion.to_dict() if s.champion else {}
    return policy_header(
        s.env,
        champ,
        {"dev": s.cfg.dev, "holdout": s.cfg.holdout, "audit": s.cfg.audit},
        audit,
        f"scriptrl train (run folder: {s.store.run_dir})",
        dev_label=f"training-stream mean ({champ.get('episodes', 0)} fresh episodes)",
    )


@dataclass(frozen=True)
class StoredEvaluation:
    """A stored holdout or audit evaluation: the numbers the champion keeps."""

    mean: float
    ci95: tuple[float, float]
    success_rate: float | None = None
    success_ci95: tuple[float, float] | None = None

    @classmethod
    def of(cls, row: dict) -> StoredEvaluation:
        mean = row["mean"] if row["mean"] is not None else float("-inf")
        success = SuccessRate.of_digest(row.get("digest"))
        return cls(
            mean,
            (row.get("ci_lo") or mean, row.get("ci_hi") or mean),
            success.rate if success else None,
            success.ci95 if success else None,
        )
