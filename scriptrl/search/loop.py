"""The learning loop: propose programs, race them on fresh episodes, tune the leaders, keep the best.

Seed protocol. Selection uses only the training stream (``SeedSplits.train``: fresh seeds,
disjoint from holdout and audit). Each round draws its own seeds, shared by every candidate of
the round and by the programs they must beat (common random numbers: ``search/racing.py``), and
each CMA-ES generation draws its own (``search/tuning_campaign.py``); no constant is fitted to a
fixed set of episodes. A member's score is its mean over every fresh episode it has played. The
leader plays ``confirm_episodes`` fresh episodes before it may earn a holdout evaluation, which
confirms and is the reported score (``search/champion.py``); audit is evaluated once, at the end.
The dev split 0-19 is retired as a selection set: fixed seeds overfit (``../shared/BENCHMARKS.md``);
a champion's "dev" score is its training-stream mean.

Every step is written to the run store before the next begins. An iteration's randomness derives
from (seed, iteration) and its seeds from the stream position saved with the state, and every
episode played is stored with its seed, so a resumed run replays the same rounds and finds their
episodes (and CMA-ES generations) already stored instead of paying for them twice.

Rounds are structural (children of the generators), tuning (a CMA-ES campaign on a leader's
constants) or dense (a campaign on the dense linear form of a leading program, every reading in
every score, with the larger population of the measured recipe: ``search/dense_rounds.py``),
split by ``EffortSplit`` following gains per env step: with the dense lane, how far each round
moved the population's best (recent rounds weigh more), else the race winners' gains over
their own opponents. A slow generator (a
language model) writes in its own lane beside the search (``search/model_lane.py``): the rounds
run as the offline search's do and each model program is raced at the round after it arrives
(``--llm-rounds``: the model writes each round's share in a background thread while the
evaluators tune, ``search/overlap.py``); such a run is reproducible only as far as the model and
its timing are, and exactly as the offline search's until the model's first program arrives.

This module is the pipeline; its parts live beside it: the leader, champion, holdout and audit in
``search/leadership.py``, the slow generator's rounds in ``search/slow_writer.py``, storing
candidates and calls in ``search/recording.py``, the saved state in ``search/checkpoint.py``.
"""

from __future__ import annotations

import dataclasses
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from scriptrl.envs import ResolvedEnv, resolve_env, with_success
from scriptrl.errors import UserError
from scriptrl.evaluate.executors import Executor
from scriptrl.generators.base import Candidate, GenContext, Generator, ParentInfo
from scriptrl.program import Program
from scriptrl.search import stopping
from scriptrl.search.champion import Champion
from scriptrl.search.checkpoint import restore_state, save_state
from scriptrl.search.config import TrainConfig
from scriptrl.search.dense_rounds import DenseTuning
from scriptrl.search.episodes import EpisodeBank, SeedStream
from scriptrl.search.leadership import CONFIRM_CHUNK, finish, lead
from scriptrl.search.model_lane import ModelLane
from scriptrl.search.pacing import ModelTime, ProgramClock, RoundPlan, predicted_seconds
from scriptrl.search.parent_context import with_facts
from scriptrl.search.population import Member, Population, structure_signature
from scriptrl.search.portfolio import EffortSplit, Portfolio
from scriptrl.search.racing import Entrant, Outcome, Played, Race, RaceRule, paired
from scriptrl.search.recording import drain_generators, record_candidate
from scriptrl.search.slow_writer import overlapped_round, slow_children, width_beside_model, write_initial
from scriptrl.search.temperature import Temperature
from scriptrl.search.tuning_rounds import Tuning
from scriptrl.store import RunStore

SEARCH_STAGES = ("cheap", "full")
#: Rounds over which the effort split's credit halves when rounds are credited by the leader's
#: gain (``EffortSplit.memory``): leader gains are rare, a few tens of rounds apart.
EFFORT_MEMORY = 30.0
__all__ = ["CONFIRM_CHUNK", "SEARCH_STAGES", "ChildPlan", "Search"]


@dataclass(frozen=True)
class ChildPlan:
    """One child to write: by which generator and operator, from which parents, against whom."""

    generator: Generator
    op: str  # mutate | crossover
    a: ParentInfo
    b: ParentInfo
    opponent: int  # the parent it must beat: the stronger one
    rng: random.Random


class Search:
    def __init__(
        self,
        cfg: TrainConfig,
        store: RunStore,
        executor: Executor,
        portfolio: Portfolio,
        progress: Callable[[dict], None] | None = None,
        tuner_factory=None,
    ) -> None:
        self.cfg, self.store, self.executor, self.portfolio = cfg, store, executor, portfolio
        self.env = success_env(cfg)
        self.ctx = GenContext.for_env(self.env)
        # A success target alone stops on success alone; otherwise the solved threshold is the default.
        default = None if cfg.target_success is not None else self.env.solved_threshold
        self.target = cfg.target if cfg.target is not None else default
        self.progress = progress
        self.stream = SeedStream(cfg.splits())
        self.rule = RaceRule(cfg.cheap_episodes, cfg.race_chunk, cfg.race_episodes)
        self.bank = EpisodeBank(store, executor, self.env)
        self.iteration = 0
        self.population = Population.empty(cfg.islands, cfg.island_capacity)
        self.temperature = Temperature.parse(cfg.temperature)
        self.champion: Champion | None = None
        self.best_dev = float("-inf")  # the leader's training-stream mean
        self.best_dev_id: int | None = None
        self.seconds_before = 0.0
        self.started = time.monotonic()
        self.stop_reason: str | None = None
        self.idle_rounds = 0  # rounds since the last race win
        self.steps_mark: int | None = None  # search env steps when the state was last saved
        self._round_steps: dict[int, int] | None = None  # iteration -> what it cost (``round`` events)
        self.gain = 0.0  # summed mean paired gains of race winners over the programs they beat
        # what a round is credited with: "leader" (how far it moved the population's best) or
        # "race" (its race winners' paired gains over their own opponents); see TrainConfig
        self.effort_by = cfg.effort_credit or ("leader" if cfg.dense_popsize_factor > 0 else "race")
        self.effort = EffortSplit(memory=EFFORT_MEMORY if self.effort_by == "leader" else None)
        self.tuning = Tuning(self, tuner_factory)
        self.dense = DenseTuning(self, tuner_factory) if cfg.dense_popsize_factor > 0 else None
        self.fruitless: Counter[int] = self.tuning.fruitless
        self.clock = ProgramClock()  # a slow generator's measured seconds per program
        self.model_time = ModelTime()  # its writing time: each round's allowance in, what it took out
        self.round_plan: RoundPlan | None = None  # its share of the current round
        self.activity = "starting"  # what the evaluators do, for the live view
        self.traces: dict[int, tuple] = {}  # program id -> its traced worst episodes (for prompts)
        self.lane: ModelLane | None = None
        self.tunable = True  # False: --no-evolution found no constants left to tune, the run ends
        # the model writes beside a search run as offline's; with --no-evolution its first programs only
        if portfolio.slow and cfg.model_lane and cfg.evolve:
            slow = [g for g in portfolio.generators.values() if g.slow]
            self.portfolio = portfolio.without(slow)
            self.lane = ModelLane(self, slow)

    # --- the loop -------------------------------------------------------------------
    def run(self) -> None:
        if not self._restore():
            # A run killed before its first saved state restarts from the top; what it already
            # stored is found again by hash and seed instead of being evaluated a second time.
            kind = "resume" if self.store.programs() else "start"
            start = {"env": self.env.label(), "target": self.target, "iteration": 0}
            if self.cfg.target_success is not None:
                start["target_success"] = self.cfg.target_success
            self.store.add_event(kind, start)
            if self.lane is not None:
                self.lane.top_up()  # the model's first calls start before the first evaluation
            if self.portfolio.slow:
                overlapped_round(self, lambda emit, stopped: write_initial(self, emit, stopped))
            else:
                self._consider(self._initial_candidates(), {}, self.stream.draw(self.rule.episodes))
            lead(self)
            self._save()
        while (stop := self._stop()) is None:
            self.iteration += 1
            improved = self._iteration()
            self.idle_rounds = 0 if improved else self.idle_rounds + 1
            self.temperature.update(improved, self.iteration, self.cfg.max_iterations)
            self._save()
        if self.lane is not None:
            self.lane.close()
        if stop.reason != self.stop_reason:  # not a resumed run that had already finished this way
            self._finish(stop)
        if self.lane is not None:
            self.store.add_event("model_lane", {"iteration": self.iteration, **self.lane.summary()})

    def _iteration(self) -> bool:
        rng = random.Random(f"{self.cfg.seed}:{self.iteration}")
        temp = self.temperature.value
        if self.champion is not None:  # the reward history a language model is shown
            self.ctx.history.append(self.best_dev)
        kinds: tuple[str, ...] = (
            ("structure", "tuning") if self.cfg.tune_every and not self.portfolio.slow else ("structure",)
        )
        if not self.cfg.evolve:  # --no-evolution: after the first programs, every round tunes
            kinds = ("tuning",)  # their own constants: no dense lane, whose forms add readings
        elif "tuning" in kinds and self.dense is not None and self.dense.available():
            kinds += ("dense",)
        kind = self.effort.choose(kinds)
        mark = self.search_env_steps()
        model_wins = self.lane.step() if self.lane is not None else 0  # what the model wrote meanwhile
        # Steps from the saved mark, not from now: a round replayed after a crash finds its episodes
        # stored and adds none, yet it cost (and must be credited) what it cost the first time. The
        # lane's races just now are not this round's cost.
        saved = self.steps_mark if self.steps_mark is not None else mark
        before, gain_before = saved + (self.search_env_steps() - mark), self.gain
        ahead = self.population.best()
        ahead_score = ahead.score if ahead is not None else None
        wins = None
        self.activity = "tuning constants" if kind == "tuning" else "racing the round's children"
        if kind == "tuning":
            wins = self.tuning.round(temp, self.cfg.tune_generations, "scheduled")
        elif kind == "dense" and self.dense is not None:
            wins = self.dense.round(temp, self.cfg.tune_generations, "scheduled")
        if wins is None and not self.cfg.evolve:  # nothing left to tune, and no children to write
            self.tunable, wins = False, 0
        if wins is None:  # structural round (or nothing left to tune)
            kind = "structure"
            wins = self._slow_children(rng, temp) if self.portfolio.slow else self._fast_children(rng, temp)
        cost, race_gain = self._round_cost(kind, before), self.gain - gain_before
        wins += model_wins
        lead(self)
        moved = self._leader_gain(ahead.id if ahead is not None else None, ahead_score)
        if moved > 0:  # which kind of round moved the leader, and by how much (for the run's reader)
            self.store.add_event("leader_gain", {"iteration": self.iteration, "kind": kind, "gain": moved})
        self.effort.credit(kind, race_gain if self.effort_by == "race" else moved, cost)
        if self.cfg.migrate_every and self.iteration % self.cfg.migrate_every == 0:
            moves = self.population.migrate()
            if moves:
                self.store.add_event("migration", {"iteration": self.iteration, "moves": moves})
        return wins > 0

    def _leader_gain(self, before_id: int | None, before_score: float | None) -> float:
        """How far the round moved the population's best (after its confirmation by ``lead``):
        the new best's mean over the old best's mean before the round, when the round put a
        different program on top; 0 otherwise (the same leader's mean moving with more episodes
        is noise, not the round's doing)."""
        best = self.population.best()
        if best is None or before_score is None or best.id == before_id:
            return 0.0
        return max(0.0, best.score - before_score)

    def _round_cost(self, kind: str, before: int) -> int:
        """The env steps this round cost, as stored in its ``round`` event the first time it ran.

        A round replayed after a crash finds its episodes stored and plays none, and counting from
        the saved mark would hand it the stored episodes of every later round that ran before the
        crash too: right only while those rounds were of its own kind (with a dense lane, rounds
        of three kinds follow each other). So each round's cost is stored once and reused."""
        if self._round_steps is None:
            self._round_steps = {
                int(e["data"]["iteration"]): int(e["data"]["env_steps"]) for e in self.store.events("round")
            }
        if self.iteration in self._round_steps:
            return self._round_steps[self.iteration]
        steps = self.search_env_steps() - before
        self._round_steps[self.iteration] = steps
        self.store.add_event("round", {"iteration": self.iteration, "kind": kind, "env_steps": steps})
        return steps

    def _plan_children(self, rng: random.Random, temp: float) -> list[ChildPlan]:
        """Each child's generator, operator and parents, chosen before any is written; each gets
        its own rng, so writing them in a thread changes nothing."""
        plans = []
        for k in range(self.cfg.children_per_iteration):
            island = self.population.islands[(self.iteration + k) % len(self.population.islands)]
            if not island.members:
                continue
            gen, op = self.portfolio.choose(rng, can_cross=len(island.members) >= 2)
            a = island.select(rng, temp)
            b = island.select(rng, min(1.5, temp + 0.5)) if op == "crossover" else a
            if b.id == a.id:
                op = "mutate"
            opponent = max((a, b), key=lambda m: (m.score, -m.id)).id
            plans.append(
                ChildPlan(
                    gen,
                    op,
                    self._parent(a),
                    self._parent(b),
                    opponent,
                    random.Random(f"{self.cfg.seed}:{self.iteration}:{k}"),
                )
            )
        return plans

    def _write_children(self, plans: list[ChildPlan], temp: float, emit, stopped=lambda: False) -> None:
        for p in plans:
            if stopped():
                return
            if p.op == "crossover":
                child = p.generator.crossover(self.ctx, p.a, p.b, temp, p.rng)
            else:
                child = p.generator.mutate(self.ctx, p.a, temp, p.rng)
            if child is not None:
                child.generator = child.generator or f"{p.generator.name}.{p.op}"
                emit((child, p.opponent))

    def _fast_children(self, rng: random.Random, temp: float) -> int:
        """Write all children (milliseconds each), then race them on the round's fresh seeds."""
        written: list[tuple[Candidate, int]] = []
        self._write_children(self._plan_children(rng, temp), temp, written.append)
        return self._consider(
            [c for c, _ in written],
            {i: o for i, (_, o) in enumerate(written)},
            self.stream.draw(self.rule.episodes),
        )

    def _slow_children(self, rng: random.Random, temp: float) -> int:
        """A slow generator writes its share of the round's children in a thread while the
        evaluators race the others and tune (``search/pacing.py``)."""
        return slow_children(self, self._plan_children(rng, temp), temp)

    def with_feedback(self, plans: list[ChildPlan]) -> list[ChildPlan]:
        """The plans a model writes, their parents with what the prompt shows beside them:
        traced worst episodes, lineage, inspirations (``search/parent_context.py``)."""
        if not self.cfg.llm_feedback:
            return plans
        return [dataclasses.replace(p, a=with_facts(self, p.a)) if p.op == "mutate" else p for p in plans]

    # --- racing candidates ------------------------------------------------------------
    def _consider(self, candidates: list[Candidate], opponents: dict[int, int], seeds: list[int]) -> int:
        """Record, deduplicate and race candidates on ``seeds``; place the winners; return how many won."""
        drain_generators(self)
        entrants: dict[int, tuple[Entrant, Candidate]] = {}
        for i, c in enumerate(candidates):
            pid = record_candidate(self, c)
            if pid is not None and pid not in entrants and pid != opponents.get(i):
                entrants[pid] = (Entrant(pid, c.source, opponents.get(i)), c)
        if not entrants:
            return 0
        opp_ids = {e.opponent for e, _ in entrants.values() if e.opponent is not None}
        opp_sources = {o: self._source(o) for o in opp_ids}
        race = Race([e for e, _ in entrants.values()], opp_sources, seeds, self.rule)
        outcomes = race.run(self.bank.play)
        for opp in sorted(opp_ids):
            self.population.add_returns(opp, [p.ret for p in race.played.get(opp, [])])
        wins = 0
        for pid, (entrant, cand) in entrants.items():
            res = outcomes[pid]
            if entrant.opponent is not None:
                self.portfolio.credit(cand.generator, res.won, cand.call)
            if res.won:
                if entrant.opponent is not None:
                    wins += 1
                    self.gain += _gain(res, race.played[entrant.opponent])
                self._place(cand, res)
        if not opp_ids:  # first programs: the best quarter joins too, never one tied with the worst
            ranked = sorted(outcomes.values(), key=lambda o: (-_mean(o), o.pid))
            floor = _mean(ranked[-1])
            for o in ranked[: max(2, len(ranked) // 4)]:
                if not o.won and (_mean(o) > floor or not self.population.size()):
                    self._place(entrants[o.pid][1], o)
        return wins

    def _place(self, cand: Candidate, res: Outcome) -> None:
        member = Member(res.pid, float("-inf"), structure_signature(cand.source))
        member.add([p.ret for p in res.episodes])
        self.population.islands[self._island_for(cand, res.pid)].offer(member, self.population.capacity)
        if res.tie_break:
            self.store.add_event(
                "tie_break",
                {
                    "iteration": self.iteration,
                    "program": res.pid,
                    "beat": res.opponent,
                    "by": "episode length, then distinct tail states",
                },
            )

    def _source(self, pid: int) -> str:
        return self.store.program(pid)["source"]

    def _island_for(self, c: Candidate, pid: int) -> int:
        for idx, island in enumerate(self.population.islands):
            if any(m.id in c.parents for m in island.members):
                return idx
        return pid % len(self.population.islands)

    # --- budgets, state, finish --------------------------------------------------------
    def search_env_steps(self) -> int:
        """Every episode the search ran (races, confirmations, tuning), holdout and audit apart."""
        return self.store.env_steps(SEARCH_STAGES, ("tune",))

    def seconds(self) -> float:
        return self.seconds_before + time.monotonic() - self.started

    def _stop(self, mid_iteration: bool = False) -> stopping.Stop | None:
        totals = self.store.totals()
        steps = self.search_env_steps()
        if self.progress:
            self.progress(self._snapshot(totals, steps))
        return stopping.check(
            self.cfg,
            champion=self.champion,
            target=self.target,
            iteration=self.iteration,
            env_steps=steps,
            seconds=self.seconds(),
            cost=totals.get("cost_usd", 0.0),
            population=self.population.size(),
            idle_rounds=self.idle_rounds,
            mid_iteration=mid_iteration,
            max_return=self.env.max_return,
            tunable=self.tunable,
        )

    def _snapshot(self, totals: dict, steps: int) -> dict:
        c = self.champion
        return {
            "iteration": self.iteration,
            "best_dev": self.best_dev if c else None,
            "best_holdout": c.holdout if c else None,
            "env_steps": steps,
            "evaluations": totals.get("evaluations", 0),
            "seconds": self.seconds(),
            "cost_usd": totals.get("cost_usd", 0.0),
            "temperature": self.temperature.value,
            "improvements": dict(self.portfolio.wins),
            **self._model_snapshot(),
        }

    def _model_snapshot(self) -> dict:
        """What the live view shows of a slow generator: its speed, its share of the round, and
        what the evaluators do meanwhile."""
        if self.lane is not None:
            return self.lane.snapshot(self.activity)
        if not self.portfolio.slow:
            return {}
        plan = self.round_plan
        return {
            "seconds_per_call": self.portfolio.seconds_per_call,
            "seconds_per_program": self.clock.seconds_per_program,
            "calls_in_flight": self.portfolio.calls_in_flight,
            "model_programs": plan.model_programs if plan else None,
            "fast_programs": plan.fast_programs if plan else None,
            "round_seconds": plan.budget_s if plan else None,
            "activity": self.activity,
            "predicted_model_seconds": predicted_seconds(
                max(0, self.cfg.max_iterations - self.iteration),
                plan.allowance_s if plan else self.cfg.llm_round_seconds,
                self.clock.seconds_per_program,
                self.cfg.children_per_iteration,
            )
            if self.cfg.max_iterations is not None
            else None,
        }

    def _save(self) -> None:
        save_state(self)

    def _restore(self) -> bool:
        return restore_state(self)

    def _finish(self, stop: stopping.Stop) -> None:
        finish(self, stop)

    def _parent(self, m: Member) -> ParentInfo:
        """A parent with how it behaved (episode ends, last observations, actions), for feedback."""
        ev = self.store.best_evaluation(m.id, "train") or self.store.best_evaluation(m.id, "dev")
        digest = None
        if ev is not None:
            digest = {k: ev.get(k) for k in ("episodes", "mean", "std", "min", "max", "failures", "digest")}
        return ParentInfo(id=m.id, source=self._source(m.id), score=m.score, digest=digest)

    def _initial_candidates(self) -> list[Candidate]:
        rng = random.Random(f"{self.cfg.seed}:init")
        cands: list[Candidate] = []
        if self.cfg.init:
            cands.append(self._user_init(self.cfg.init))
        cands += self.portfolio.initial(self.ctx, self.cfg.initial_programs, self.temperature.value, rng)
        return cands

    def _user_init(self, path: str) -> Candidate:
        """The user's ``--init`` program, the first candidate of the run."""
        return Candidate(
            Program.from_file(path).validate(allow_module_state=self.cfg.allow_module_state).source,
            (),
            "user.init",
            "init",
            self.temperature.value,
            note=f"from {self.cfg.init}",
        )

    def _width_beside_model(self) -> int | None:
        return width_beside_model(self)


def success_env(cfg: TrainConfig) -> ResolvedEnv:
    """The run's environment with the user's success rule, if any; a success target needs a rule."""
    env = with_success(resolve_env(cfg.env, imports=cfg.imports, options=cfg.env_options), cfg.success)
    if cfg.target_success is not None and env.description.success is None:
        raise UserError(
            f"--target-success needs a definition of success, and {env.id}'s description has none; "
            'give one with --success EXPR, e.g. --success "episode_return > 0"'
        )
    return env


def _gain(res: Outcome, opponent: list[Played]) -> float:
    diffs, tie = paired(res.episodes, opponent)
    return 0.0 if tie or not diffs else max(0.0, sum(diffs) / len(diffs))


def _mean(o: Outcome) -> float:
    return sum(p.ret for p in o.episodes) / len(o.episodes) if o.episodes else float("-inf")
