"""Variants of one program evaluated as a family (one sandbox worker, large batches) get exactly
the results they get alone, and only true variants ever share a worker."""

import pytest

from scriptrl.envs import resolve_env
from scriptrl.evaluate import EvalConfig, evaluate
from scriptrl.evaluate.executors import EvalJob, LocalExecutor, family_groups, run_jobs, spread
from scriptrl.evaluate.family import evaluate_family, family_key
from scriptrl.program import Program
from scriptrl.program.shape import shape_hash

LINEAR = '''def policy(obs):
    """Push the cart the way the pole falls, with a weight on each reading."""
    s = {a} * obs[0] + {b} * obs[1] + {c} * obs[2] + {d} * obs[3]
    return 1 if s > 0 else 0
'''

WEIGHTS = [(0.0, 0.0, 1.0, 0.5), (0.1, 0.2, 1.5, 0.3), (-0.5, 0.1, 0.2, 0.1), (0.0, 0.0, -1.0, 0.0)]


def _variants() -> list[Program]:
    return [Program(LINEAR.format(a=a, b=b, c=c, d=d)) for a, b, c, d in WEIGHTS]


def _same(a, b) -> bool:
    return a.returns == b.returns and a.lengths == b.lengths and a.seeds == b.seeds


def test_each_variant_gets_the_result_it_gets_alone():
    progs, seeds = _variants(), [3, 4, 5, 6]
    family = evaluate_family(progs, "CartPole-v1", seeds, split="dev")
    alone = [evaluate(p, "CartPole-v1", seeds, split="dev") for p in progs]
    assert all(_same(f, a) for f, a in zip(family, alone, strict=True))
    assert len({tuple(r.returns) for r in family}) > 1  # the variants really behave differently
    assert [r.env_steps for r in family] == [sum(r.lengths) for r in alone]
    assert all(r.isolation for r in family)  # the shared worker's isolation report, as alone


GUARDED = """def policy(obs):
    s = 0.1 * obs[0] + 1.0 * obs[2] + 0.5 * obs[3]
    if s > {raise_at}:
        raise ValueError("too far")
    while s > {hang_at}:
        pass
    return 1 if s > 0 else 0
"""


def test_a_variant_that_raises_or_hangs_does_not_change_its_siblings():
    raising = Program(GUARDED.format(raise_at=0.0, hang_at=900.0))
    hanging = Program(GUARDED.format(raise_at=900.0, hang_at=0.0))
    calm = Program(GUARDED.format(raise_at=900.0, hang_at=900.0))
    progs = [raising, hanging, calm]
    cfg = EvalConfig(call_timeout=0.5, per_action_timeout=0.01)
    assert len({family_key(p, cfg) for p in progs}) == 1
    family = evaluate_family(progs, "CartPole-v1", [1, 2], cfg, split="dev")
    alone = [evaluate(p, "CartPole-v1", [1, 2], cfg, split="dev") for p in progs]
    assert "ValueError" in family[0].failures[0]["reason"] and alone[0].failures
    assert "timeout" in family[1].failures[0]["reason"] and alone[1].failures
    assert _same(family[2], alone[2]) and not family[2].failures  # the hang killed the shared worker
    assert family[2].mean > 50


def test_only_variants_of_one_program_share_a_worker():
    cfg = EvalConfig()
    a, b = _variants()[:2]
    assert family_key(a, cfg) == family_key(b, cfg)
    other = Program(a.source.replace("* obs[3]", "* abs(obs[3])"))
    assert family_key(other, cfg) != family_key(a, cfg)
    randomized = Program("import random\n\n" + a.source.replace("s > 0", "s > random.random() - 0.5"))
    assert family_key(randomized, cfg) is None  # a shared RNG would couple the variants
    stateful = Program(
        "class Policy:\n    def reset(self):\n        pass\n\n    def act(self, obs):\n        return 0\n"
    )
    assert family_key(stateful, cfg) is None
    with pytest.raises(ValueError):
        evaluate_family([a, other], "CartPole-v1", [0])


def test_shape_hash_ignores_numbers_docstrings_and_layout_but_not_structure():
    a = "def policy(obs):\n    '''doc'''\n    return 1 if obs[2] > -0.25 else 0\n"
    b = "def policy(obs):\n    return 1 if obs[2] >   0.5 else 0  # note\n"
    c = "def policy(obs):\n    return 1 if obs[2] < 0.5 else 0\n"
    d = "def policy(obs):\n    return True if obs[2] > 0.5 else False\n"
    assert shape_hash(a) == shape_hash(b)
    assert len({shape_hash(b), shape_hash(c), shape_hash(d)}) == 3
    assert shape_hash("def policy(:") != shape_hash("def policy(::")


def test_jobs_are_grouped_by_environment_seeds_and_shape_and_spread_over_workers():
    env = resolve_env("CartPole-v1")
    progs = _variants()
    jobs = [EvalJob(p.source, env, (1, 2), "dev") for p in progs]
    jobs.append(EvalJob(progs[0].source, env, (3, 4), "dev"))  # other episodes: its own group
    jobs.append(EvalJob("def policy(obs):\n    return 0\n", env, (1, 2), "dev"))
    groups = family_groups(jobs, EvalConfig())
    assert groups == [[0, 1, 2, 3], [4], [5]]
    assert spread(groups, workers=2, in_flight=2) == [[0, 1], [2, 3], [4], [5]]
    big = [list(range(56))]
    assert [len(t) for t in spread(big, workers=2, in_flight=2)] == [28, 28]
    results = run_jobs(jobs, EvalConfig(), in_flight=2)
    alone = [evaluate(Program(j.source), env, list(j.seeds), split="dev") for j in jobs]
    assert all(_same(r, a) for r, a in zip(results, alone, strict=True))


def test_the_process_pool_returns_family_results_in_job_order():
    env = resolve_env("CartPole-v1")
    progs = _variants() * 2
    jobs = [EvalJob(p.source, env, (7, 8), "dev") for p in progs]
    ex = LocalExecutor(workers=2)
    try:
        results = ex.map(jobs)
    finally:
        ex.close()
    alone = [evaluate(p, env, [7, 8], split="dev") for p in progs]
    assert all(_same(r, a) for r, a in zip(results, alone, strict=True))
