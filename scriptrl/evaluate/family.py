"""Evaluating variants of one program together: one sandbox worker, one batch per step.

Why: a tuning generation is tens of variants of one program that differ only in their numbers
(CMA-ES candidates), each scored on the same few fresh episodes. Evaluated one by one, a
variant's five episodes make batches of one to five observations, so each environment step
waits for a round trip to a sandbox and the pipe and the scheduler cost more than the
simulator (LunarLander-v3 on 2 cores: 5.3 k env steps/s as twelve 5-episode evaluations, two
in flight, against 10.0 k as one 60-episode evaluation; ``benchmarks/RESULTS.md``). Evaluated
as a family, all their episodes share one worker and each message carries up to
``EvalConfig.max_concurrency`` observations.

What may share a worker: the variants run in one locked-down process, each in a module of its
own, so their code could reach each other's state. They share one only when their code is the
same apart from its numbers (``program.shape.shape_hash``), none uses randomness (a shared
RNG would make a variant's returns depend on its siblings), and each passes the static checks.
A variant with a failed episode (an exception, a timeout, a crashed worker that took its
siblings' episodes with it) is evaluated again on its own, so every variant's result is the
one it gets alone: ``tests/evaluate/test_family.py`` checks this episode by episode.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence

from scriptrl.envs import ResolvedEnv, resolve_env
from scriptrl.evaluate import evaluate, screening_config, unreported_note
from scriptrl.evaluate.config import EvalConfig
from scriptrl.evaluate.loop import _EpisodeLoop
from scriptrl.evaluate.results import Episode, EvalResult, _summarize
from scriptrl.program import Program, check_source
from scriptrl.program.shape import shape_hash


def family_key(program: Program, config: EvalConfig) -> str | None:
    """The key variants of one family share; None when the program must run in a worker of its own."""
    if not _may_share(program, config) or not config.static_checks:
        return None
    return _shape_if_shareable(program.source, program.name, config.allow_module_state)


def planning_key(program: Program, config: EvalConfig) -> str | None:
    """``family_key`` without the static checks, for planning only (``executors.family_groups``)."""
    return shape_hash(program.source) if _may_share(program, config) else None


def _may_share(program: Program, config: EvalConfig) -> bool:
    """Families are on, the program draws no random numbers, and it runs in a sandbox."""
    return config.families and "random" not in program.source and not config.unsafe_in_process


@functools.lru_cache(maxsize=4096)
def _shape_if_shareable(source: str, name: str, allow_module_state: bool) -> str | None:
    """Cached: an evaluator groups its share (``executors.family_groups``) and ``evaluate_family``
    checks the same programs again, and the static checks parse a program several times (they
    had cost the search's process a third of its CPU on 56 LunarLander-v3 variants)."""
    if check_source(source, name, allow_module_state=allow_module_state):
        return None
    try:
        if Program(source, name).entry_kind != "function":
            return None
    except Exception:  # no entry point: its own evaluation reports why
        return None
    return shape_hash(source)


def evaluate_family(
    programs: Sequence[Program],
    env: ResolvedEnv | str,
    seeds: list[int],
    config: EvalConfig | None = None,
    split: str = "custom",
) -> list[EvalResult]:
    """Each program's result on ``seeds``, as ``evaluate`` gives it, from one shared worker.

    The caller groups the programs (``family_key``); programs of different keys raise ValueError.
    """
    config = config or EvalConfig()
    renv = resolve_env(env) if isinstance(env, str) else env
    if len(programs) < 2:
        return [evaluate(p, renv, seeds, config, split) for p in programs]
    keys = {family_key(p, config) for p in programs}
    if None in keys or len(keys) != 1:
        raise ValueError("evaluate_family: the programs are not variants of one program (see family_key)")
    config = screening_config(config, split, seeds)
    started = time.perf_counter()
    episodes = [Episode(seed=s) for _ in programs for s in seeds]
    # The worker runs programs[0] as it runs any program, and the others beside it (variant i >= 1).
    family = {
        "variants": [p.source for p in programs[1:]],
        "variant_of": [i for i in range(len(programs)) for _ in seeds],
    }
    loop = _EpisodeLoop(programs[0], renv, episodes, config, family=family)
    isolation, _ = loop.run()
    seconds = time.perf_counter() - started
    total = sum(ep.length for ep in episodes) or 1
    note = unreported_note(loop.unreported)
    results: list[EvalResult] = []
    n = len(seeds)
    for i, prog in enumerate(programs):
        own = episodes[i * n : (i + 1) * n]
        if any(ep.end == "failure" for ep in own):  # maybe a sibling's doing: its own evaluation says
            results.append(evaluate(prog, renv, seeds, config, split))
            continue
        steps = sum(ep.length for ep in own)
        results.append(_summarize(prog, renv, split, own, isolation, steps, seconds * steps / total, note))
    return results
