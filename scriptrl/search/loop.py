"""The learning loop: generate programs, evaluate them cheaply, then fully, keep the best.

Seed protocol: children are scored on a few dev seeds, promising ones on the whole dev
split, a new dev champion on the holdout split (the score reported), and the final
champion once on the audit split, which never selects anything. Every step is written
to the run store before the next begins, and an iteration's randomness derives from
(seed, iteration), so a resumed run regenerates the same children and finds their
evaluations already stored instead of paying for them twice.

A slow generator (a language model: seconds per program) writes in a background thread
and each program is evaluated as it arrives; meanwhile the evaluators tune the constants
of the best programs (``search/overlap.py``). Those tuning rounds depend on how long the
model takes, so such a run is reproducible only as far as the model and its timing are.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from dataclasses import dataclass

from scriptrl.envs import resolve_env
from scriptrl.evaluate import EvalResult, combine_results
from scriptrl.executors import EvalJob
from scriptrl.generators.base import Candidate, GenContext, ParentInfo
from scriptrl.program import Program, check_source
from scriptrl.search.config import TrainConfig
from scriptrl.search.population import Member, Population, structure_signature
from scriptrl.search.portfolio import Portfolio
from scriptrl.search.temperature import Temperature
from scriptrl.store import RunStore, policy_header

SEARCH_STAGES = ("cheap", "full")


@dataclass
class Scored:
    id: int
    source: str
    dev: float | None  # full dev mean, when it earned one
    cheap: float | None


class Search:
    def __init__(self, cfg: TrainConfig, store: RunStore, executor, portfolio: Portfolio, progress=None) -> None:
        self.cfg, self.store, self.executor, self.portfolio = cfg, store, executor, portfolio
        self.env = resolve_env(cfg.env, imports=cfg.imports)
        self.ctx = GenContext.for_env(self.env)
        self.target = cfg.target if cfg.target is not None else self.env.solved_threshold
        self.progress = progress
        dev = list(range(*cfg.dev))
        self.cheap_seeds, self.rest_seeds = dev[: cfg.cheap_episodes], dev[cfg.cheap_episodes :]
        self.iteration = 0
        self.population = Population.empty(cfg.islands, cfg.island_capacity)
        self.temperature = Temperature.parse(cfg.temperature)
        self.champion: dict | None = None  # {"id", "dev", "holdout"}
        self.best_dev = float("-inf")
        self.best_dev_id: int | None = None
        self.seconds_before = 0.0
        self.started = time.monotonic()
        self.stop_reason: str | None = None
        self.fruitless: Counter[int] = Counter()  # tuning rounds that found nothing, per program

    # --- the loop -------------------------------------------------------------------
    def run(self) -> None:
        if not self._restore():
            # A run killed before its first saved state restarts from the top; what it already
            # stored is found again by hash instead of being evaluated a second time.
            kind = "resume" if self.store.programs() else "start"
            self.store.add_event(kind, {"env": self.env.label(), "target": self.target, "iteration": 0})
            if self.portfolio.slow:
                self._overlapped(self._write_initial)
            else:
                self._consider(self._initial_candidates(), parents={})
            self._save()
        while (reason := self._budget_reason()) is None:
            self.iteration += 1
            improved = self._iteration()
            self.temperature.update(improved, self.iteration, self.cfg.max_iterations)
            self._save()
        if reason != self.stop_reason:  # not a resumed run that had already finished this way
            self._finish(reason)

    def _iteration(self) -> bool:
        rng = random.Random(f"{self.cfg.seed}:{self.iteration}")
        temp = self.temperature.value
        before = self.best_dev
        if self.champion is not None:  # the reward history a language model is shown
            self.ctx.history.append(self.best_dev)
        if self.portfolio.slow:
            self._slow_children(rng, temp)
        else:
            self._fast_children(rng, temp)
        if self.cfg.tune_every and self.iteration % self.cfg.tune_every == 0:
            self._tune(rng, temp, self.iteration // max(1, self.cfg.tune_every))
        if self.cfg.migrate_every and self.iteration % self.cfg.migrate_every == 0:
            moves = self.population.migrate()
            if moves:
                self.store.add_event("migration", {"iteration": self.iteration, "moves": moves})
        return self.best_dev > before

    def _plan_children(self, rng: random.Random, temp: float) -> list[tuple]:
        """Each child's generator, operator, parents and bar (its parents' score), chosen before
        any is written; each gets its own rng, so writing them in a thread changes nothing."""
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
            plans.append((gen, op, self._parent(a), self._parent(b), min(a.score, b.score),
                          random.Random(f"{self.cfg.seed}:{self.iteration}:{k}")))  # fmt: skip
        return plans

    def _write_children(self, plans: list[tuple], temp: float, emit, stopped=lambda: False) -> None:
        for gen, op, pa, pb, bar, child_rng in plans:
            if stopped():
                return
            if op == "crossover":
                child = gen.crossover(self.ctx, pa, pb, temp, child_rng)
            else:
                child = gen.mutate(self.ctx, pa, temp, child_rng)
            if child is not None:
                child.generator = child.generator or f"{gen.name}.{op}"
                emit((child, bar))

    def _fast_children(self, rng: random.Random, temp: float) -> None:
        """Write all children (milliseconds each), then evaluate them as one batch."""
        written: list[tuple[Candidate, float]] = []
        self._write_children(self._plan_children(rng, temp), temp, written.append)
        children = [c for c, _ in written]
        parents = {i: bar for i, (_, bar) in enumerate(written)}
        results = self._consider(children, parents)
        for i, s in enumerate(results):
            if s is not None:
                self.portfolio.credit(children[i].generator, s.dev is not None and s.dev > parents[i],
                                      children[i].call)  # fmt: skip

    # --- a slow generator: the evaluators tune constants while it writes -------------
    def _slow_children(self, rng: random.Random, temp: float) -> None:
        """Let the writer thread write the planned children one by one; each is evaluated as
        soon as it is written."""
        plans = self._plan_children(rng, temp)
        self._overlapped(lambda emit, stopped: self._write_children(plans, temp, emit, stopped))

    def _write_initial(self, emit, stopped) -> None:
        rng = random.Random(f"{self.cfg.seed}:init")
        if self.cfg.init:
            emit((self._user_init(), None))
        for c in self.portfolio.initial_stream(self.ctx, self.cfg.initial_programs, self.temperature.value, rng):
            emit((c, None))
            if stopped():
                return

    def _overlapped(self, write) -> None:
        """Consider candidates as the writer delivers them; tune one island's best while it writes."""
        from scriptrl.search.overlap import overlapped

        rounds = [0]

        def consume(item: tuple[Candidate, float | None]) -> None:
            child, bar = item
            scored = self._consider([child], {} if bar is None else {0: bar})[0]
            if scored is not None and bar is not None:
                self.portfolio.credit(child.generator, scored.dev is not None and scored.dev > bar, child.call)

        def idle() -> bool:
            if self.population.size() == 0:
                return False
            k = rounds[0]
            rounds[0] += 1
            self._tune(random.Random(f"{self.cfg.seed}:{self.iteration}:while-writing:{k}"), self.temperature.value,
                       self.iteration + k, reason="while the generator writes")  # fmt: skip
            return True

        overlapped(write, consume, idle, lambda: self._budget_reason(mid_iteration=True) is not None)

    # --- evaluating candidates --------------------------------------------------------
    def _consider(self, candidates: list[Candidate], parents: dict[int, float]) -> list[Scored | None]:
        """Record, deduplicate, evaluate cheaply, evaluate promising ones fully, place them."""
        self._drain_generators()
        out: list[Scored | None] = [None] * len(candidates)
        fresh: list[tuple[int, int, Candidate]] = []  # (index, program id, candidate)
        for i, c in enumerate(candidates):
            pid = self._record(c)
            if pid is not None:
                fresh.append((i, pid, c))
        cheap = self._evaluate_stage([(pid, c.source) for _, pid, c in fresh], "cheap", self.cheap_seeds)
        promising = []
        for (i, pid, c), res in zip(fresh, cheap, strict=True):
            bar = parents.get(i)
            if bar is not None:
                bar -= abs(bar) * self.cfg.promote_margin
            if bar is None or res.mean > bar:  # a tie with its parent earns no full evaluation
                promising.append((i, pid, c, res, bar))
            out[i] = Scored(pid, c.source, None, res.mean)
        if not parents and len(promising) > 1:
            # Initial programs: the best quarter goes on, but never a program tied with the
            # batch's worst (when every program scores the floor, one representative is enough).
            promising.sort(key=lambda t: -t[3].mean)
            floor = promising[-1][3].mean
            keep = [p for p in promising[: max(2, len(promising) // 4)] if p[3].mean > floor]
            promising = keep or promising[:1]
        full = self._race_full([(pid, c.source, res, bar) for _, pid, c, res, bar in promising])
        for (i, pid, c, *_), res in zip(promising, full, strict=True):
            out[i] = Scored(pid, c.source, res.mean, out[i].cheap)
            island_idx = self._island_for(c, pid)
            self.population.islands[island_idx].offer(
                Member(pid, res.mean, structure_signature(c.source)), self.population.capacity
            )
            self._maybe_promote(pid, c.source, res)
        return out

    def _record(self, c: Candidate) -> int | None:
        """Store a candidate once; return its id if it may be evaluated (valid)."""
        prog = Program(c.source)
        existing = self.store.find_by_norm_hash(prog.normalized_hash)
        if existing is not None:
            call = c.call
            if call is not None and (call.prompt_tokens or call.completion_tokens or call.cost_usd):
                # a paid call that only rediscovered a known program still counts toward cost
                self.store.add_call(c.generator, call.latency_s, call.prompt_tokens, call.completion_tokens,
                                    call.cost_usd, call.model, existing, call.ok, call.error, c.temperature)  # fmt: skip
            return existing if self.store.program(existing)["status"] != "invalid" else None
        problems = check_source(c.source)
        with self.store.transaction():
            pid = self.store.add_program(
                c.source, prog.normalized_hash, c.parents, c.generator, c.change, c.temperature,
                None, self.iteration, c.note, status="invalid" if problems else "new",
                error=problems[0] if problems else None,
            )  # fmt: skip
            call = c.call
            self.store.add_call(c.generator, call.latency_s if call else 0.0,
                                call.prompt_tokens if call else 0, call.completion_tokens if call else 0,
                                call.cost_usd if call else 0.0, call.model if call else None, pid,
                                call.ok if call else True, call.error if call else None, c.temperature)  # fmt: skip
        return None if problems else pid

    def _evaluate_stage(self, items: list[tuple[int, str]], stage: str, seeds: list[int]) -> list[EvalResult]:
        """Evaluate (reusing any stored evaluation of this stage), record each in its own transaction."""
        results: list[EvalResult | None] = [self._stored(pid, stage) for pid, _ in items]
        where = [k for k, r in enumerate(results) if r is None]
        jobs = [EvalJob(items[k][1], self.env, tuple(seeds), "dev") for k in where]
        for k, res in zip(where, self.executor.map(jobs), strict=True):
            self._record_eval(items[k][0], stage, res)
            results[k] = res
        return results  # type: ignore[return-value]

    def _race_full(self, items: list[tuple[int, str, EvalResult, float | None]]) -> list[EvalResult]:
        """The rest of the dev split in chunks, stopping a child as soon as its running mean
        falls below its bar (its parent's score): losers cost a few episodes, not twenty."""
        dev = self.cheap_seeds + self.rest_seeds
        results: list[EvalResult | None] = [self._stored(pid, "full") for pid, *_ in items]
        acc: dict[int, EvalResult | None] = {}
        pos: dict[int, int] = {}
        for k, (_, _, cheap, _) in enumerate(items):
            if results[k] is None:  # a stored cheap result has no episodes to extend: start over
                acc[k], pos[k] = (cheap, len(self.cheap_seeds)) if isinstance(cheap, EvalResult) else (None, 0)
        chunk = max(1, self.cfg.race_chunk)
        while acc:
            order = sorted(acc)
            jobs = [EvalJob(items[k][1], self.env, tuple(dev[pos[k] : pos[k] + chunk]), "dev") for k in order]
            for k, res in zip(order, self.executor.map(jobs), strict=True):
                merged = res if acc[k] is None else combine_results([acc[k], res], split="dev")
                pos[k] += chunk
                bar = items[k][3]
                if pos[k] >= len(dev) or (bar is not None and merged.mean < bar):
                    self._record_eval(items[k][0], "full", merged)
                    results[k] = merged
                    del acc[k]
                else:
                    acc[k] = merged
        return results  # type: ignore[return-value]

    def _drain_generators(self) -> None:
        """Store what generators report besides candidates: calls that produced none (failed or
        unusable model replies, which still cost tokens) and notices such as a fallback."""
        for gen in self.portfolio.generators.values():
            for label, call in getattr(gen, "drain_calls", list)():
                self.portfolio.charge(label, call)
                self.store.add_call(label, call.latency_s, call.prompt_tokens, call.completion_tokens, call.cost_usd,
                                    call.model, None, call.ok, call.error, None)  # fmt: skip
            for kind, data in getattr(gen, "drain_events", list)():
                self.store.add_event(kind, {"iteration": self.iteration, **data})

    def _record_eval(self, pid: int, stage: str, res: EvalResult) -> None:
        with self.store.transaction():
            self.store.add_evaluation(pid, "dev", stage, res)
            self.store.set_program_status(pid, "evaluated")

    def _stored(self, pid: int, stage: str) -> EvalResult | None:
        rows = self.store.evaluations(program_id=pid, stage=stage)
        return _StoredResult(rows[-1]) if rows else None  # type: ignore[return-value]

    def _island_for(self, c: Candidate, pid: int) -> int:
        for idx, island in enumerate(self.population.islands):
            if any(m.id in c.parents for m in island.members):
                return idx
        return pid % len(self.population.islands)

    # --- champion, holdout and audit ---------------------------------------------------
    def _maybe_promote(self, pid: int, source: str, dev: EvalResult) -> None:
        """A new dev best is confirmed on holdout when it reaches the target or clearly beats
        the last confirmed one: holdout episodes cost steps, and they never select children."""
        reached = self.champion is not None and self.target is not None and self.champion["holdout"] >= self.target
        if dev.mean < self.best_dev or (dev.mean == self.best_dev and reached):
            return
        self.best_dev = max(self.best_dev, dev.mean)
        self.best_dev_id = pid
        step = max(1e-9, 0.1 * abs(self.target)) if self.target is not None else 1e-9
        confirmed_dev = self.champion["dev"] if self.champion else float("-inf")
        at_target = self.target is not None and dev.mean >= self.target
        if not (at_target or dev.mean >= confirmed_dev + step):
            return
        self._confirm(pid, source, dev)

    def _confirm(self, pid: int, source: str, dev: EvalResult) -> None:
        holdout = self._split_eval(pid, source, "holdout")
        if self.champion is None or holdout.mean >= self.champion["holdout"]:
            self.champion = {"id": pid, "dev": dev.mean, "holdout": holdout.mean, "ci95": list(holdout.ci95)}
            self.store.write_best_policy(source, self._header())
            self.store.add_event("promotion", {"iteration": self.iteration, **self.champion})

    def _split_eval(self, pid: int, source: str, split: str) -> EvalResult:
        stored = self._stored(pid, split)
        if stored is not None:
            return stored
        seeds = list(range(*getattr(self.cfg, split)))
        res = self.executor.map([EvalJob(source, self.env, tuple(seeds), split)])[0]
        self.store.add_evaluation(pid, split, split, res)
        return res

    def _header(self, audit: EvalResult | None = None) -> dict:
        return policy_header(self.env, self.champion or {},
                             {"dev": self.cfg.dev, "holdout": self.cfg.holdout, "audit": self.cfg.audit},
                             audit.mean if audit is not None else None,
                             f"scriptrl train (run folder: {self.store.run_dir})")  # fmt: skip

    # --- constant tuning --------------------------------------------------------------
    def _tune(self, rng: random.Random, temp: float, turn: int, reason: str = "scheduled") -> None:
        """CMA-ES on the constants of one program, scored on the cheap dev seeds (the original is
        scored there too, so "improved" compares like with like). Scheduled rounds take the
        islands' bests in turn; rounds while a model writes take the best programs first."""
        from scriptrl.generators.tuning import ConstantTuner, tune_constants

        if reason == "scheduled":
            occupied = [i for i in self.population.islands if i.members]
            target = occupied[turn % len(occupied)].best() if occupied else None
        else:
            target = self.population.next_to_tune(self.fruitless)
        if target is None:
            return
        source = self.store.program(target.id)["source"]
        steps = [0]

        width = self._width_beside_model() if reason != "scheduled" else None

        def score_batch(sources: list[str]) -> list[float]:
            jobs = [EvalJob(s, self.env, tuple(self.cheap_seeds), "dev") for s in sources]
            step = width or len(jobs) or 1
            res = [r for i in range(0, len(jobs), step) for r in self.executor.map(jobs[i : i + step])]
            steps[0] += sum(r.env_steps for r in res)
            return [r.mean if not r.failures else r.mean - 1e-6 for r in res]

        t0 = time.monotonic()
        try:
            scales = ConstantTuner().scales(self.ctx, source)
        except Exception:  # an exotic environment only loses the better step sizes
            scales = None
        result = tune_constants(source, score_batch, self.cfg.tune_budget, temp, rng, baseline=None, scales=scales,
                                good_enough=self.target)  # fmt: skip
        self.store.add_event("tune", {"iteration": self.iteration, "program": target.id, "env_steps": steps[0],
                                      "evaluations": result.evaluations, "improved": result.improved,
                                      "why": reason})  # fmt: skip
        if not result.improved:
            self.fruitless[target.id] += 1 if result.n_constants else 1000
        if result.improved and result.source != source:
            cand = Candidate(result.source, (target.id,), "cma.tune", "scalar", temp,
                             note=f"tuned {result.n_constants} constants with CMA-ES: {result.score:.4g} on cheap seeds",
                             call=_offline_call(time.monotonic() - t0))  # fmt: skip
            scored = self._consider([cand], {0: target.score})
            self.portfolio.credit("cma.tune", scored[0] is not None and (scored[0].dev or float("-inf")) > target.score)

    def _width_beside_model(self) -> int | None:
        """Evaluations in flight while a model on this machine writes: the model's threads keep
        their cores (on 2 cores one busy evaluator slowed a 1-thread model 1.55x, two 3.2x:
        benchmarks/llm_contention.py). None: no limit (a served model, or evaluators on other machines)."""
        threads = self.portfolio.local_threads
        workers = getattr(self.executor, "workers", None)
        if not threads or not getattr(self.executor, "on_this_machine", False) or not workers:
            return None
        return max(1, workers - threads)

    # --- budgets, state, finish --------------------------------------------------------
    def search_env_steps(self) -> int:
        steps = sum(e["env_steps"] or 0 for e in self.store.evaluations() if e["stage"] in SEARCH_STAGES)
        return steps + sum(int(e["data"].get("env_steps", 0)) for e in self.store.events("tune"))

    def seconds(self) -> float:
        return self.seconds_before + time.monotonic() - self.started

    def _budget_reason(self, mid_iteration: bool = False) -> str | None:
        cfg = self.cfg
        totals = self.store.totals()
        if self.progress:
            self.progress(self._snapshot(totals))
        if self.champion and self.target is not None and self.champion["holdout"] >= self.target:
            return f"target reached: holdout {self.champion['holdout']:.2f} >= {self.target:g}"
        if not mid_iteration and cfg.max_iterations is not None and self.iteration >= cfg.max_iterations:
            return f"iteration budget reached ({cfg.max_iterations})"
        if cfg.max_env_steps is not None and self.search_env_steps() >= cfg.max_env_steps:
            return f"env-step budget reached ({cfg.max_env_steps:,})"
        if cfg.max_seconds is not None and self.seconds() >= cfg.max_seconds:
            return f"time budget reached ({cfg.max_seconds:g} s)"
        if cfg.max_cost is not None and totals.get("cost_usd", 0.0) >= cfg.max_cost:
            return f"cost budget reached (${cfg.max_cost:g})"
        if not mid_iteration and self.population.size() == 0:
            return "no valid program survived evaluation"
        return None

    def _snapshot(self, totals: dict) -> dict:
        return {"iteration": self.iteration, "best_dev": self.best_dev if self.champion else None,
                "best_holdout": self.champion["holdout"] if self.champion else None,
                "env_steps": self.search_env_steps(), "evaluations": totals.get("evaluations", 0),
                "seconds": self.seconds(), "cost_usd": totals.get("cost_usd", 0.0),
                "temperature": self.temperature.value, "improvements": dict(self.portfolio.wins)}  # fmt: skip

    def _save(self) -> None:
        self.store.save_state({"iteration": self.iteration, "population": self.population.to_state(),
                               "temperature": self.temperature.to_state(), "champion": self.champion,
                               "best_dev": self.best_dev, "best_dev_id": self.best_dev_id, "seconds": self.seconds(),
                               "portfolio": self.portfolio.to_state(), "finished": self.stop_reason})  # fmt: skip

    def _restore(self) -> bool:
        state = self.store.load_state()
        if not state:
            return False
        self.iteration = state["iteration"]
        self.population = Population.from_state(state["population"])
        self.temperature = Temperature.from_state(state["temperature"])
        self.champion = state["champion"]
        self.best_dev = state["best_dev"] if state["best_dev"] is not None else float("-inf")
        self.best_dev_id = state.get("best_dev_id")
        self.seconds_before = state["seconds"]
        self.portfolio.restore(state.get("portfolio") or {})
        self.stop_reason = state.get("finished")
        self.store.add_event("resume", {"iteration": self.iteration})
        return True

    def _finish(self, reason: str) -> None:
        best = self.best_dev_id
        if best is not None and (self.champion is None or self.champion["id"] != best):
            self._confirm(best, self.store.program(best)["source"], self._stored(best, "full"))
        if self.champion is not None:
            pid = self.champion["id"]
            source = self.store.program(pid)["source"]
            audit = self._split_eval(pid, source, "audit")
            self.champion["audit"] = audit.mean
            self.store.write_best_policy(source, self._header(audit))
        self.stop_reason = reason
        self._save()
        self.store.add_event("stop", {"reason": reason, "iteration": self.iteration})

    def _parent(self, m: Member) -> ParentInfo:
        """A parent with how it behaved (episode ends, last observations, actions), for feedback."""
        row = self.store.program(m.id)
        ev = self.store.best_evaluation(m.id, "dev")
        digest = None
        if ev is not None:
            digest = {k: ev.get(k) for k in ("episodes", "mean", "std", "min", "max", "failures", "digest")}
        return ParentInfo(id=m.id, source=row["source"], score=m.score, digest=digest)

    def _initial_candidates(self) -> list[Candidate]:
        rng = random.Random(f"{self.cfg.seed}:init")
        cands: list[Candidate] = []
        if self.cfg.init:
            cands.append(self._user_init())
        cands += self.portfolio.initial(self.ctx, self.cfg.initial_programs, self.temperature.value, rng)
        return cands

    def _user_init(self) -> Candidate:
        return Candidate(Program.from_file(self.cfg.init).validate().source, (), "user.init", "init",
                         self.temperature.value, note=f"from {self.cfg.init}")  # fmt: skip


class _StoredResult:
    """A stored evaluation row seen through the attributes the search reads from EvalResult."""

    def __init__(self, row: dict) -> None:
        self.row = row
        self.mean = row["mean"] if row["mean"] is not None else float("-inf")
        self.ci95 = (row.get("ci_lo") or self.mean, row.get("ci_hi") or self.mean)
        self.env_steps = row.get("env_steps") or 0
        self.failures = row.get("failures") or []
        self.episodes_digest = row.get("digest")


def _offline_call(latency: float):
    from scriptrl.generators.base import GeneratorCall

    return GeneratorCall(latency_s=latency)
