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

Rounds are structural (children of the generators) or tuning (a CMA-ES campaign on a leader's
constants), split by ``EffortSplit`` following the race winners' gains per env step. A slow generator (a
language model) writes in a background thread; each program is raced as it arrives and the
evaluators tune constants meanwhile (``search/overlap.py``); such a run is reproducible only as
far as the model and its timing are.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from scriptrl.envs import resolve_env
from scriptrl.evaluate import EvalResult
from scriptrl.executors import EvalJob, Executor
from scriptrl.generators.base import Candidate, GenContext, Generator, GeneratorCall, ParentInfo
from scriptrl.program import Program, check_source
from scriptrl.search import stopping
from scriptrl.search.champion import Champion, deserves_holdout
from scriptrl.search.config import TrainConfig
from scriptrl.search.episodes import EpisodeBank, SeedStream
from scriptrl.search.population import Member, Population, structure_signature
from scriptrl.search.portfolio import EffortSplit, Portfolio
from scriptrl.search.racing import Entrant, Outcome, Played, Race, RaceRule, paired
from scriptrl.search.temperature import Temperature
from scriptrl.search.tuning_rounds import Tuning
from scriptrl.store import CallRecord, RunStore, policy_header

SEARCH_STAGES = ("cheap", "full")
CONFIRM_CHUNK = 10  # fresh episodes per confirmation step of a leader


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
        self.env = resolve_env(cfg.env, imports=cfg.imports, options=cfg.env_options)
        self.ctx = GenContext.for_env(self.env)
        self.target = cfg.target if cfg.target is not None else self.env.solved_threshold
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
        self.gain = 0.0  # summed mean paired gains of race winners over the programs they beat
        self.effort = EffortSplit()
        self.tuning = Tuning(self, tuner_factory)
        self.fruitless: Counter[int] = self.tuning.fruitless

    # --- the loop -------------------------------------------------------------------
    def run(self) -> None:
        if not self._restore():
            # A run killed before its first saved state restarts from the top; what it already
            # stored is found again by hash and seed instead of being evaluated a second time.
            kind = "resume" if self.store.programs() else "start"
            self.store.add_event(kind, {"env": self.env.label(), "target": self.target, "iteration": 0})
            if self.portfolio.slow:
                self._overlapped(self._write_initial)
            else:
                self._consider(self._initial_candidates(), {}, self.stream.draw(self.rule.episodes))
            self._lead()
            self._save()
        while (stop := self._stop()) is None:
            self.iteration += 1
            improved = self._iteration()
            self.idle_rounds = 0 if improved else self.idle_rounds + 1
            self.temperature.update(improved, self.iteration, self.cfg.max_iterations)
            self._save()
        if stop.reason != self.stop_reason:  # not a resumed run that had already finished this way
            self._finish(stop)

    def _iteration(self) -> bool:
        rng = random.Random(f"{self.cfg.seed}:{self.iteration}")
        temp = self.temperature.value
        if self.champion is not None:  # the reward history a language model is shown
            self.ctx.history.append(self.best_dev)
        kinds = ("structure", "tuning") if self.cfg.tune_every and not self.portfolio.slow else ("structure",)
        kind = self.effort.choose(kinds)
        before, gain_before = self.search_env_steps(), self.gain
        wins = None
        if kind == "tuning":
            wins = self.tuning.round(temp, self.cfg.tune_generations, "scheduled")
        if wins is None:  # structural round (or nothing left to tune)
            kind = "structure"
            wins = self._slow_children(rng, temp) if self.portfolio.slow else self._fast_children(rng, temp)
        self.effort.credit(kind, self.gain - gain_before, self.search_env_steps() - before)
        self._lead()
        if self.cfg.migrate_every and self.iteration % self.cfg.migrate_every == 0:
            moves = self.population.migrate()
            if moves:
                self.store.add_event("migration", {"iteration": self.iteration, "moves": moves})
        return wins > 0

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

    # --- a slow generator: the evaluators tune constants while it writes -------------
    def _slow_children(self, rng: random.Random, temp: float) -> int:
        plans = self._plan_children(rng, temp)
        return self._overlapped(lambda emit, stopped: self._write_children(plans, temp, emit, stopped))

    def _write_initial(self, emit, stopped) -> None:
        rng = random.Random(f"{self.cfg.seed}:init")
        if self.cfg.init:
            emit((self._user_init(), None))
        for c in self.portfolio.initial_stream(
            self.ctx, self.cfg.initial_programs, self.temperature.value, rng
        ):
            emit((c, None))
            if stopped():
                return

    def _overlapped(self, write) -> int:
        """Race candidates as the writer delivers them; tune a leader's constants while it writes."""
        from scriptrl.search.overlap import overlapped

        wins = [0]

        def consume(item: tuple[Candidate, int | None]) -> None:
            child, opponent = item
            wins[0] += self._consider(
                [child], {} if opponent is None else {0: opponent}, self.stream.draw(self.rule.episodes)
            )

        def idle() -> bool:
            if self.population.size() == 0:
                return False
            self.bank.width = self._width_beside_model()
            try:
                wins[0] += self.tuning.round(self.temperature.value, 1, "while the generator writes") or 0
            finally:
                self.bank.width = None
            return True

        overlapped(write, consume, idle, lambda: self._stop(mid_iteration=True) is not None)
        return wins[0]

    # --- racing candidates ------------------------------------------------------------
    def _consider(self, candidates: list[Candidate], opponents: dict[int, int], seeds: list[int]) -> int:
        """Record, deduplicate and race candidates on ``seeds``; place the winners; return how many won."""
        self._drain_generators()
        entrants: dict[int, tuple[Entrant, Candidate]] = {}
        for i, c in enumerate(candidates):
            pid = self._record(c)
            if pid is not None and pid not in entrants and pid != opponents.get(i):
                entrants[pid] = (Entrant(pid, c.source, opponents.get(i)), c)
        if not entrants:
            return 0
        opp_ids = {e.opponent for e, _ in entrants.values() if e.opponent is not None}
        opponents = {o: self._source(o) for o in opp_ids}
        race = Race([e for e, _ in entrants.values()], opponents, seeds, self.rule)
        outcomes = race.run(self.bank.play)
        for o in sorted(opp_ids):
            self.population.add_returns(o, [p.ret for p in race.played.get(o, [])])
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

    def _record(self, c: Candidate) -> int | None:
        """Store a candidate once; return its id if it may race (valid and new in this round; a
        program first stored in an earlier round is a rediscovery, not a new candidate)."""
        prog = Program(c.source)
        existing = self.store.find_by_norm_hash(prog.normalized_hash)
        if existing is not None:
            call = c.call
            if call is not None and (call.prompt_tokens or call.completion_tokens or call.cost_usd):
                # a paid call that only rediscovered a known program still counts toward cost
                self.store.add_call(_call_record(c.generator, call, existing, c.temperature))
            row = self.store.program(existing)
            return existing if row["status"] != "invalid" and row["iteration"] == self.iteration else None
        problems = check_source(c.source, allow_module_state=self.cfg.allow_module_state)
        with self.store.transaction():
            pid = self.store.add_program(
                c.source,
                prog.normalized_hash,
                c.parents,
                c.generator,
                c.change,
                c.temperature,
                None,
                self.iteration,
                c.note,
                status="invalid" if problems else "new",
                error=problems[0] if problems else None,
            )
            self.store.add_call(_call_record(c.generator, c.call, pid, c.temperature))
        return None if problems else pid

    def _drain_generators(self) -> None:
        """Store what generators report besides candidates: calls that produced none (failed or
        unusable model replies, which still cost tokens) and notices such as a fallback."""
        for gen in self.portfolio.generators.values():
            for label, call in gen.drain_calls():
                self.portfolio.charge(label, call)
                self.store.add_call(_call_record(label, call, None, None))
            for kind, data in gen.drain_events():
                self.store.add_event(kind, {"iteration": self.iteration, **data})

    def _source(self, pid: int) -> str:
        return self.store.program(pid)["source"]

    def _island_for(self, c: Candidate, pid: int) -> int:
        for idx, island in enumerate(self.population.islands):
            if any(m.id in c.parents for m in island.members):
                return idx
        return pid % len(self.population.islands)

    # --- the leader, the champion, holdout and audit -----------------------------------
    def _lead(self) -> None:
        """Confirm the population's leader on fresh episodes, then give it holdout if it earned it."""
        leader = self._leader()
        for _ in range(12):  # in chunks: a confirmation that dethrones the leader stops paying for it
            if leader is None or leader.n >= self.cfg.confirm_episodes:
                break
            seeds = self.stream.draw(min(CONFIRM_CHUNK, self.cfg.confirm_episodes - leader.n))
            played = self.bank.play([(leader.id, self._source(leader.id), seeds)], stage="full")[0]
            self.population.add_returns(leader.id, [p.ret for p in played])
            leader = self._leader()
        if leader is None or leader.n < self.cfg.confirm_episodes:
            return
        self.best_dev, self.best_dev_id = leader.score, leader.id
        current = self.population.member(self.champion.id) if self.champion else None
        if deserves_holdout(leader, self.champion, current, self.target):
            self._confirm(leader)

    def _leader(self) -> Member | None:
        """The population's best; but when that is a champion that meets the target on training
        episodes and not on holdout, the best member not yet seen on holdout (among equals at the
        target, holdout decides)."""
        best = self.population.best()
        c = self.champion
        if best is None or c is None or best.id != c.id or self.target is None:
            return best
        if c.holdout >= self.target or best.score < self.target:
            return best
        checked = {e["program_id"] for e in self.store.evaluations(split="holdout")}
        others = [m for i in self.population.islands for m in i.members if m.id not in checked]
        return max(others, key=lambda m: (m.score, -m.id), default=best)

    def _confirm(self, leader: Member) -> None:
        source = self._source(leader.id)
        holdout = self._split_eval(leader.id, source, "holdout")
        if self.champion is None or holdout.mean >= self.champion.holdout:
            self.champion = Champion(
                leader.id, leader.score, holdout.mean, list(holdout.ci95), leader.n, leader.variance_of_mean()
            )
            self.store.write_best_policy(source, self._header())
            self.store.add_event("promotion", {"iteration": self.iteration, **self.champion.to_dict()})

    def _split_eval(self, pid: int, source: str, split: str) -> EvalResult | _Stored:
        rows = self.store.evaluations(program_id=pid, stage=split)
        if rows:
            return _Stored.of(rows[-1])
        seeds = self.cfg.splits().seeds(split)
        res = self.executor.map([EvalJob(source, self.env, tuple(seeds), split)])[0]
        self.store.add_evaluation(pid, split, split, res)
        return res

    def _header(self, audit: float | None = None) -> dict:
        champ = self.champion.to_dict() if self.champion else {}
        return policy_header(
            self.env,
            champ,
            {"dev": self.cfg.dev, "holdout": self.cfg.holdout, "audit": self.cfg.audit},
            audit,
            f"scriptrl train (run folder: {self.store.run_dir})",
            dev_label=f"training-stream mean ({champ.get('episodes', 0)} fresh episodes)",
        )

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
        }

    def _save(self) -> None:
        self.store.save_state(
            {
                "iteration": self.iteration,
                "population": self.population.to_state(),
                "temperature": self.temperature.to_state(),
                "champion": self.champion.to_dict() if self.champion else None,
                "best_dev": self.best_dev,
                "best_dev_id": self.best_dev_id,
                "seconds": self.seconds(),
                "portfolio": self.portfolio.to_state(),
                "finished": self.stop_reason,
                "stream": self.stream.position,
                "effort": self.effort.to_state(),
                "idle_rounds": self.idle_rounds,
                "tuning": self.tuning.to_state(),
                "gain": self.gain,
            }
        )

    def _restore(self) -> bool:
        state = self.store.load_state()
        if not state:
            return False
        self.iteration = state["iteration"]
        self.population = Population.from_state(state["population"])
        self.temperature = Temperature.from_state(state["temperature"])
        self.champion = Champion.from_dict(state["champion"])
        self.best_dev = state["best_dev"] if state["best_dev"] is not None else float("-inf")
        self.best_dev_id = state.get("best_dev_id")
        self.seconds_before = state["seconds"]
        self.portfolio.restore(state.get("portfolio") or {})
        self.stop_reason = state.get("finished")
        self.stream.position = int(state.get("stream") or 0)
        self.effort.restore(state.get("effort") or {})
        self.idle_rounds = int(state.get("idle_rounds") or 0)
        self.gain = float(state.get("gain") or 0.0)
        self.tuning.restore(state.get("tuning") or {})
        self.store.add_event("resume", {"iteration": self.iteration})
        return True

    def _finish(self, stop: stopping.Stop) -> None:
        leader = self.population.best()
        if (
            leader is not None
            and leader.n >= self.cfg.confirm_episodes
            and (self.champion is None or self.champion.id != leader.id)
        ):
            self._confirm(leader)  # the last leader's holdout, whatever its margin
        audit = None
        if self.champion is not None:
            source = self._source(self.champion.id)
            audit = self._split_eval(self.champion.id, source, "audit").mean
            self.champion.audit = audit
            self.store.write_best_policy(source, self._header(audit))
        info = stopping.verdict(stop, self.champion, self.target, self.idle_rounds)
        self.stop_reason = stopping.describe(stop, info, self.target)
        self._save()
        self.store.add_event("stop", {"reason": self.stop_reason, "iteration": self.iteration, **info})

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
            cands.append(self._user_init())
        cands += self.portfolio.initial(self.ctx, self.cfg.initial_programs, self.temperature.value, rng)
        return cands

    def _user_init(self) -> Candidate:
        return Candidate(
            Program.from_file(self.cfg.init).validate(allow_module_state=self.cfg.allow_module_state).source,
            (),
            "user.init",
            "init",
            self.temperature.value,
            note=f"from {self.cfg.init}",
        )

    def _width_beside_model(self) -> int | None:
        """Evaluations in flight while a model on this machine writes: the model's threads keep
        their cores (on 2 cores one busy evaluator slowed a 1-thread model 1.55x, two 3.2x:
        benchmarks/llm_contention.py). None: no limit (a served model, or evaluators on other machines)."""
        threads = self.portfolio.local_threads
        if not threads or not self.executor.on_this_machine or not self.executor.workers:
            return None
        return max(1, self.executor.workers - threads)


@dataclass(frozen=True)
class _Stored:
    """A stored holdout or audit evaluation: the two numbers the champion keeps."""

    mean: float
    ci95: tuple[float, float]

    @classmethod
    def of(cls, row: dict) -> _Stored:
        mean = row["mean"] if row["mean"] is not None else float("-inf")
        return cls(mean, (row.get("ci_lo") or mean, row.get("ci_hi") or mean))


def _gain(res: Outcome, opponent: list[Played]) -> float:
    diffs, tie = paired(res.episodes, opponent)
    return 0.0 if tie or not diffs else max(0.0, sum(diffs) / len(diffs))


def _mean(o: Outcome) -> float:
    return sum(p.ret for p in o.episodes) / len(o.episodes) if o.episodes else float("-inf")


def _call_record(
    generator: str, call: GeneratorCall | None, pid: int | None, temperature: float | None
) -> CallRecord:
    if call is None:
        return CallRecord(generator, 0.0, program_id=pid, temperature=temperature)
    return CallRecord(
        generator,
        call.latency_s,
        call.prompt_tokens,
        call.completion_tokens,
        call.cost_usd,
        call.model,
        pid,
        call.ok,
        call.error,
        temperature,
    )
