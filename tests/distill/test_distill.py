"""scriptrl distill: the oblique tree recovers a known rule, the teacher is rebuilt from an exported
program without running it, the rendered program reads with observation names and acts in the
sandbox exactly as the tree does in-process, and a PPO CartPole baseline distils end to end."""

import json

import numpy as np
import pytest

from scriptrl.baselines.export import Layer, NetSpec, program_source
from scriptrl.distill.render import code_lines, observation_names, render_program
from scriptrl.distill.rollouts import EnvPool, play
from scriptrl.distill.teacher import load_teacher
from scriptrl.distill.tree import Node, TreeSettings, fit_tree
from scriptrl.distill.tune import parameters, rounded, with_parameters
from scriptrl.envs import resolve_env
from scriptrl.errors import UserError
from scriptrl.program import check_source

CARTPOLE = resolve_env("CartPole-v1")


def _oblique_data(n=6000, seed=0):
    """Action 1 exactly when 0.5*x1 - 2*x2 > 0.2, observations on very different scales."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (n, 4)) * [1.0, 3.0, 0.5, 10.0]
    return x, (0.5 * x[:, 1] - 2.0 * x[:, 2] > 0.2).astype(int)


def test_an_oblique_split_recovers_the_rule_an_axis_aligned_tree_can_only_staircase():
    x, y = _oblique_data()
    tree = fit_tree(x, y, None, 2, TreeSettings(max_depth=3))
    assert tree.leaves() == 2  # one split says it all
    true = np.array([0.0, -0.25, 1.0, 0.0])  # the rule is x2 - 0.25 x1 < -0.1 (either orientation)
    cosine = float(tree.weights @ true) / np.linalg.norm(tree.weights) / np.linalg.norm(true)
    assert abs(cosine) > 0.999
    assert np.sign(cosine) * tree.threshold == pytest.approx(-0.1, abs=0.02)
    xt, yt = _oblique_data(seed=1)
    assert np.mean(tree.predict(xt) == yt) > 0.99
    axis = fit_tree(x, y, None, 2, TreeSettings(max_depth=3, oblique=False))
    assert np.mean(axis.predict(xt) == yt) < 0.97 and axis.leaves() > 2


def test_viper_weights_decide_which_states_a_small_tree_gets_right():
    rng = np.random.default_rng(3)
    x = rng.uniform(-1, 1, (4000, 2))
    y = np.where(x[:, 0] > 0, 1, 0) ^ np.where(x[:, 1] > 0.5, 1, 0)  # needs depth 2; depth 1 must choose
    weights = np.where(x[:, 1] > 0.5, 50.0, 1.0)  # the top band matters most
    stump = fit_tree(x, y, weights, 2, TreeSettings(max_depth=1, oblique=False))
    band = x[:, 1] > 0.5
    assert np.mean(stump.predict(x[band]) == y[band]) > 0.95
    plain = fit_tree(x, y, None, 2, TreeSettings(max_depth=1, oblique=False))
    assert np.mean(plain.predict(x[band]) == y[band]) < 0.5


def _net(n_in=4, hidden=8, n_out=2, seed=0, normalize=True):
    rng = np.random.default_rng(seed)
    spec = NetSpec(
        [
            Layer(
                "linear",
                rng.normal(size=(hidden, n_in)).astype(np.float32),
                rng.normal(size=hidden).astype(np.float32),
            ),
            Layer("tanh"),
            Layer(
                "linear",
                rng.normal(size=(n_out, hidden)).astype(np.float32),
                rng.normal(size=n_out).astype(np.float32),
            ),
        ],
        "argmax",
        "box",
    )
    if normalize:
        spec.obs_mean, spec.obs_var = rng.normal(size=n_in), rng.uniform(0.5, 2.0, n_in)
    return spec


def test_the_teacher_is_rebuilt_from_the_exported_program_without_running_it():
    spec = _net()
    teacher = load_teacher(program_source(spec, "test network"), "test")
    x = np.random.default_rng(1).normal(size=(200, 4))
    z = np.clip((x - spec.obs_mean) / np.sqrt(spec.obs_var + 1e-8), -10, 10).astype(np.float32)
    hidden = np.tanh(z @ spec.layers[0].weight.T + spec.layers[0].bias)
    want = hidden @ spec.layers[2].weight.T + spec.layers[2].bias
    assert np.allclose(teacher.outputs(x), want, atol=1e-5)
    assert np.array_equal(teacher.act(x), np.argmax(want, axis=1)) and teacher.n_obs == 4
    assert np.all(teacher.importance(x) >= 0)


def test_a_program_that_is_not_an_exported_network_is_refused_in_one_line():
    tampered = program_source(_net(normalize=False), "t").replace(
        "    return x\n", "    x = __import__('os').system('true')\n    return x\n", 1
    )
    with pytest.raises(UserError, match="not a network exported by `scriptrl baseline`"):
        load_teacher(tampered, "program #3")
    with pytest.raises(UserError, match="discrete action space"):
        load_teacher("def policy(obs):\n    return [0.0]\n\ndef forward(obs):\n    return obs\n", "p")


def _hand_tree():
    """Push right when the pole falls right (a PD law), with one axis split on the cart position."""
    pd = Node(1, np.array([0.0, 0.0, 1.0, 0.25]), 0.0, Node(0), Node(1))
    return Node(0, np.array([1.0, 0.0, 0.0, 0.0]), 2.0, pd, Node(0))


def test_the_rendered_program_passes_the_checks_reads_with_names_and_acts_as_the_tree_in_the_sandbox():
    from scriptrl.evaluate import evaluate

    names = observation_names(CARTPOLE.description, 4)
    assert names == [c.name for c in CARTPOLE.description.observation]
    tree = rounded(_hand_tree())
    source = render_program(tree, names, ["push_left", "push_right"], "A test tree.")
    assert check_source(source) == []
    assert f"if {names[2]} + 0.25 * {names[3]} <= 0:" in source and "obs[" not in source.split("=")[-1]
    assert "return 1  # push_right" in source and code_lines(source) <= 8
    seeds = list(range(1000, 1010))
    sandboxed = evaluate(source, CARTPOLE, seeds)
    pool = EnvPool(CARTPOLE)
    try:
        direct = play(pool, [tree.predict], seeds).returns[0]
    finally:
        pool.close()
    assert not sandboxed.failures and sandboxed.returns == [float(r) for r in direct]
    assert sandboxed.mean > 100  # the PD law balances; a broken rendering would not


def test_tuning_parameters_round_trip_and_leave_the_leading_coefficient_fixed():
    tree = _hand_tree()
    x0, scales = parameters(tree)
    assert x0 == [2.0, 0.0, 0.25] and all(s > 0 for s in scales)  # thresholds, then the non-leading term
    moved = with_parameters(tree, [1.5, -0.1, 0.5])
    assert moved.threshold == 1.5 and moved.left.threshold == -0.1
    assert list(moved.left.weights) == [0.0, 0.0, 1.0, 0.5] and tree.left.weights[3] == 0.25


def test_a_bad_run_dir_is_one_line_naming_the_fix(tmp_path, capsys):
    from scriptrl.cli import main
    from scriptrl.store import RunStore

    assert main(["distill", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "is not a folder" in err and "Traceback" not in err
    with RunStore.create(tmp_path / "search", {"env": "CartPole-v1"}):
        pass
    assert main(["distill", str(tmp_path / "search")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "not a baseline run" in err and "scriptrl baseline" in err


RANDOM = "import random\n\n\ndef policy(obs):\n    return random.randint(0, 1)\n"


@pytest.mark.slow
def test_distill_of_a_ppo_cartpole_baseline_beats_a_random_policy_in_the_sandbox(tmp_path, capsys):
    pytest.importorskip("stable_baselines3")
    from scriptrl.baselines import train_baseline
    from scriptrl.cli import main
    from scriptrl.evaluate import evaluate

    run = train_baseline("CartPole-v1", "ppo", run_dir=tmp_path / "ppo", max_env_steps=8192, eval_every=4096)
    assert run.best_holdout is not None
    code = main(
        [
            "distill",
            str(run.run_dir),
            "--iterations",
            "3",
            "--episodes",
            "6",
            "--tune-evaluations",
            "24",
            "--tune-episodes",
            "3",
            "--max-seconds",
            "20",
            "--json",
        ]
    )
    assert code == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    source = (run.run_dir / "distill" / "policy.py").read_text()
    assert check_source(source) == [] and "obs[" not in source.split("def policy")[1].split("\n", 2)[2]
    assert any(c.name in source for c in CARTPOLE.description.observation)
    holdout = list(range(1000, 1050))
    rescored = evaluate(source, CARTPOLE, holdout)
    random_score = evaluate(RANDOM, CARTPOLE, holdout).mean
    assert summary["student_holdout"]["mean"] == pytest.approx(rescored.mean)
    assert rescored.mean > random_score + 50
    assert summary["teacher_holdout"]["seeds"] == "1000-1049"
    assert summary["teacher_holdout"]["mean"] == pytest.approx(run.best_holdout)


@pytest.mark.slow
def test_cma_tuning_of_a_tree_with_a_bad_threshold_wins_back_return_on_fresh_episodes():
    import time

    from scriptrl.distill.tune import tune_tree

    off = Node(1, np.array([0.0, 0.0, 1.0, 0.25]), 0.3, Node(0), Node(1))  # pushes left far too long
    pool = EnvPool(CARTPOLE)
    try:
        out = tune_tree(
            off,
            pool,
            seed=0,
            stream_start=0,
            episodes_per_generation=4,
            max_evaluations=60,
            confirm_episodes=10,
            deadline=time.monotonic() + 60,
        )
    finally:
        pool.close()
    assert out.evaluations == 60 and out.after >= out.before + 50
    assert abs(out.tree.threshold) < 0.3  # the kept tree is a tuned one, not the start
