"""Neural baselines: the zoo data file, the numpy export, and a PPO run stored like any run.

The export tests are the ones that matter most: a baseline is only comparable if the
program the sandbox scores *is* the trained network, so they check it against
``model.predict`` and, episode for episode, against the model driving the env itself.
"""

import json

import gymnasium as gym
import numpy as np
import pytest

from scriptrl.baselines.zoo import ALGOS, sb3_kwargs, source_note, zoo_entry
from scriptrl.errors import UserError
from scriptrl.program import check_source
from scriptrl.store import RunStore, list_runs

torch = pytest.importorskip(
    "torch", reason="the scriptrl[baselines] extra is not installed (make test installs it)"
)
sb3 = pytest.importorskip("stable_baselines3")
torch.set_num_threads(1)


# ------------------------------------------------------------------ the zoo data file


def test_zoo_values_are_the_zoos_and_name_their_source():
    e = zoo_entry("ppo", "CartPole-v1")
    assert (e.n_envs, e.n_timesteps, e.normalize) == (8, 100_000, False)
    assert e.kwargs == {
        "n_steps": 32,
        "batch_size": 256,
        "gae_lambda": 0.8,
        "gamma": 0.98,
        "n_epochs": 20,
        "ent_coef": 0.0,
        "learning_rate": "lin_0.001",
        "clip_range": "lin_0.2",
    }
    assert e.tuned and "rl-baselines3-zoo" in e.source and "hyperparams/ppo.yml" in e.source
    assert "rl-baselines3-zoo" in source_note()
    d = zoo_entry("dqn", "LunarLander-v3")
    assert "LunarLander-v2" in d.source and d.kwargs["policy_kwargs"] == {"net_arch": [256, 256]}
    assert zoo_entry("ppo", "Acrobot-v1").normalize


def test_envs_missing_from_the_zoo_say_they_are_untuned():
    e = zoo_entry("dqn", "Taxi-v4")
    assert not e.tuned and "not in rl-baselines3-zoo" in e.source


def test_every_entry_builds_valid_sb3_kwargs():
    import tomllib
    from importlib import resources

    table = tomllib.loads(resources.files("scriptrl.baselines").joinpath("hyperparams.toml").read_text())
    for algo in ALGOS:
        for env_id in table[algo]:
            kw = sb3_kwargs(zoo_entry(algo, env_id))
            for v in kw.values():
                assert not (isinstance(v, str) and v.startswith("lin_"))
    sched = sb3_kwargs(zoo_entry("ppo", "CartPole-v1"))["learning_rate"]
    assert sched(1.0) == pytest.approx(0.001) and sched(0.5) == pytest.approx(0.0005)


def test_unknown_algo_is_a_user_error():
    with pytest.raises(UserError, match="unknown --algo"):
        zoo_entry("trpo", "CartPole-v1")


# ------------------------------------------------------------------ export fidelity


def _export(model, vecnorm=None):
    from scriptrl.baselines.export import net_spec, program_source

    return program_source(net_spec(model, vecnorm), "test export")


@pytest.mark.parametrize(
    "algo,env_id,kwargs",
    [
        ("PPO", "CartPole-v1", {}),
        ("A2C", "Acrobot-v1", {"policy_kwargs": {"net_arch": [32, 16]}}),
        ("DQN", "LunarLander-v3", {"policy_kwargs": {"net_arch": [256, 256]}}),
        ("PPO", "FrozenLake8x8-v1", {}),  # Discrete observations: one-hot in SB3 and in the program
        ("PPO", "Pendulum-v1", {}),  # Box actions: clipped mean
        (
            "SAC",
            "Pendulum-v1",
            {"use_sde": True, "policy_kwargs": {"log_std_init": -3, "net_arch": [40, 30]}},
        ),
    ],
)
def test_exported_program_matches_model_predict(algo, env_id, kwargs):
    from scriptrl.baselines.export import sample_observations, verify

    env = gym.make(env_id)
    model = getattr(sb3, algo)("MlpPolicy", env, seed=1, device="cpu", **kwargs)
    source = _export(model)
    assert check_source(source) == []  # passes the same static checks as any program
    assert verify(source, model, None, sample_observations(env, 300, seed=4)) >= 0.99


def test_export_includes_frozen_vecnormalize_statistics():
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    from scriptrl.baselines.export import sample_observations, verify

    venv = VecNormalize(make_vec_env("MountainCar-v0", n_envs=2, seed=0))
    model = sb3.PPO("MlpPolicy", venv, n_steps=64, batch_size=64, seed=0, device="cpu")
    model.learn(256)  # moves the running statistics away from (0, 1)
    source = _export(model, venv)
    assert "OBS_MEAN" in source and "OBS_VAR" in source
    assert verify(source, model, venv, sample_observations(gym.make("MountainCar-v0"), 200, seed=2)) >= 0.99


@pytest.mark.slow
def test_sandbox_score_equals_the_model_playing_the_same_seeds():
    """Same evaluator, same seeds: the exported program's returns are the model's, episode by episode."""
    from scriptrl.evaluate import evaluate

    env = gym.make("CartPole-v1")
    model = sb3.PPO("MlpPolicy", env, seed=0, device="cpu", n_steps=256, batch_size=64)
    model.learn(2048)
    seeds = [1000, 1001, 1002, 1003]
    direct = []
    for s in seeds:
        obs, _ = env.reset(seed=s)
        total, done = 0.0, False
        while not done:
            a, _ = model.predict(obs, deterministic=True)
            obs, r, term, trunc, _ = env.step(int(a))
            total += r
            done = term or trunc
        direct.append(total)
    res = evaluate(_export(model), "CartPole-v1", seeds)
    assert res.failures == [] and res.returns == direct


# ------------------------------------------------------------------ a run in the run-folder format


@pytest.mark.slow
def test_ppo_cartpole_run_is_stored_like_any_run(tmp_path):
    from scriptrl.baselines import train_baseline

    # 6144 = 24 PPO rollouts of 8 envs x 32 steps, so the budget ends on a rollout boundary
    run = train_baseline(
        "CartPole-v1", "ppo", run_dir=tmp_path / "ppo", max_env_steps=6144, eval_every=2048, target=1e9
    )
    assert run.env_steps == 6144 and run.iterations == 3 and "env-step budget" in run.stop_reason
    assert run.best_holdout is not None and run.best_audit is not None and run.cost_usd == 0.0
    with RunStore.open(run.run_dir) as store:
        cfg = store.config
        assert cfg["kind"] == "baseline" and cfg["generator"] == "ppo" and cfg["env"] == "CartPole-v1"
        assert "rl-baselines3-zoo" in cfg["hyperparams_source"] and cfg["torch_threads"] == 1
        curve = store.events("curve")
        assert [e["data"]["env_steps"] for e in curve] == [2048, 4096, 6144]
        assert all(e["data"]["seconds"] > 0 for e in curve)
        dev = store.evaluations(split="dev", stage="curve")
        assert len(dev) == 3 and all(e["seeds"] == list(range(20)) for e in dev)
        champ = store.events("promotion")[-1]["data"]
        hold = store.evaluations(program_id=champ["id"], split="holdout")
        audit = store.evaluations(program_id=champ["id"], split="audit")
        assert hold[-1]["seeds"] == list(range(1000, 1050)) and audit[-1]["seeds"] == list(range(2000, 2050))
        assert sum(e["env_steps"] for e in store.evaluations(split="train")) == 6144
        assert store.top_programs("dev", 1)[0]["mean"] == max(e["mean"] for e in dev)
        assert store.events("stop")
    best = (run.run_dir / "best_policy.py").read_text()
    assert best.startswith("# env: CartPole-v1") and "holdout mean" in best and "rl-baselines3-zoo" in best
    listed = [r for r in list_runs(tmp_path) if r["generator"] == "ppo"]
    assert listed and listed[0]["best_holdout"] == run.best_holdout


@pytest.mark.slow
def test_baseline_cli_json_summary(tmp_path, cli):
    p = cli(
        "baseline",
        "--algo",
        "dqn",
        "CartPole-v1",
        "--run-dir",
        str(tmp_path / "d"),
        "--max-env-steps",
        "3000",
        "--eval-every",
        "1500",
        "--json",
    )
    assert p.returncode == 0, p.stderr[-2000:]
    summary = json.loads(p.stdout.strip().splitlines()[-1])
    assert 3000 <= summary["env_steps"] < 3000 + 256  # DQN collects in train_freq chunks (256 here)
    assert summary["best_holdout"] is not None


def test_bad_baseline_input_is_one_line(tmp_path, cli):
    p = cli("baseline", "--algo", "dqn", "Pendulum-v1", "--run-dir", str(tmp_path / "x"))
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1
    assert "DQN needs a Discrete action space" in p.stderr and not (tmp_path / "x").exists()
    p = cli("baseline", "--algo", "trpo", "CartPole-v1")
    assert p.returncode == 2 and "invalid choice" in p.stderr
    p = cli("baseline", "NoSuchEnv-v9")
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1


def test_program_size_stays_inside_the_load_message():
    from scriptrl.baselines.export import net_spec, source_bytes_estimate
    from scriptrl.baselines.train import MAX_SOURCE_BYTES
    from scriptrl.sandbox.protocol import MAX_HEADER

    model = sb3.SAC(
        "MlpPolicy",
        gym.make("BipedalWalker-v3"),
        policy_kwargs={"net_arch": [400, 300]},
        device="cpu",
        buffer_size=10,
    )
    size = len(_export(model))
    assert size < MAX_SOURCE_BYTES < MAX_HEADER
    assert source_bytes_estimate(net_spec(model)) == pytest.approx(size, rel=0.2)
    assert np.isfinite(size)
