"""Tests for scriptrl.envs against the real gymnasium registry.

The curated descriptions are hand-written data; the consistency tests here are what keep
them honest when gymnasium changes an id, a time limit, a threshold or a space.
"""

from __future__ import annotations

import json
import pickle
import sys
import warnings

import gymnasium
import numpy as np
import pytest
from gymnasium import spaces
from gymnasium.wrappers import TimeLimit

from scriptrl.envs import (
    ActionInfo,
    EnvDescription,
    EnvError,
    ObsComponent,
    ResolvedEnv,
    describe_spaces,
    list_descriptions,
    resolve_env,
)
from scriptrl.envs.description import curated_files, parse_description
from scriptrl.errors import UserError

EXPECTED_CURATED = {
    "CartPole-v1",
    "MountainCar-v0",
    "MountainCarContinuous-v0",
    "Acrobot-v1",
    "Pendulum-v1",
    "LunarLander-v3",
    "LunarLanderContinuous-v3",
    "BipedalWalker-v3",
    "FrozenLake-v1",
    "FrozenLake8x8-v1",
    "Taxi-v4",
    "CliffWalking-v1",
    "Blackjack-v1",
}
# Descriptions of ids a third-party package registers (their `imports` name it); each is checked
# against its package in its own test file (highway: tests/test_driving_env.py).
THIRD_PARTY_CURATED = {"highway-fast-v0", "highway-v0"}
CURATED = {d.id: d for d in list_descriptions()}
RAW = {data["id"]: data for data in curated_files().values()}


def _make(env_id: str) -> gymnasium.Env:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return gymnasium.make(env_id, disable_env_checker=True)


# --- curated files agree with gymnasium ----------------------------------------------------


def test_all_builtins_are_curated_and_sorted() -> None:
    assert set(CURATED) == EXPECTED_CURATED | THIRD_PARTY_CURATED
    ids = [d.id for d in list_descriptions()]
    assert ids == sorted(ids)
    assert all(not d.generated for d in list_descriptions())


@pytest.mark.parametrize("env_id", sorted(EXPECTED_CURATED))
def test_curated_file_matches_gymnasium(env_id: str) -> None:
    desc = CURATED[env_id]
    spec = gymnasium.spec(env_id)
    assert desc.time_limit == spec.max_episode_steps

    source = RAW[env_id]["threshold_source"]
    if source.startswith("gymnasium"):
        assert desc.solved_threshold == pytest.approx(spec.reward_threshold)
    else:
        # A non-gymnasium threshold is only allowed where gymnasium has none, and must say why.
        assert spec.reward_threshold is None
        assert "gymnasium defines no" in source

    env = _make(env_id)
    try:
        obs_space, act_space = env.observation_space, env.action_space
    finally:
        env.close()

    if isinstance(obs_space, spaces.Box):
        assert desc.observation_kind == "vector"
        assert obs_space.shape == (len(desc.observation),)
        for comp, lo, hi in zip(desc.observation, obs_space.low, obs_space.high, strict=True):
            # Typical ranges must be realistic: finite and inside what the space allows.
            assert comp.low is not None and comp.high is not None, comp.name
            assert comp.low >= lo - 1e-5 and comp.high <= hi + 1e-5, comp.name
    elif isinstance(obs_space, spaces.Discrete):
        assert desc.observation_kind == "discrete"
        assert len(desc.observation) == 1
        (comp,) = desc.observation
        assert (comp.low, comp.high) == (obs_space.start, obs_space.start + obs_space.n - 1)
    elif isinstance(obs_space, spaces.Tuple):
        assert desc.observation_kind == "tuple"
        assert len(desc.observation) == len(obs_space.spaces)
        for comp, sub in zip(desc.observation, obs_space.spaces, strict=True):
            assert isinstance(sub, spaces.Discrete)
            assert sub.start <= comp.low <= comp.high <= sub.start + sub.n - 1
    else:  # pragma: no cover - a new space type needs a decision about how to describe it
        pytest.fail(f"unexpected observation space {obs_space}")

    if isinstance(act_space, spaces.Discrete):
        assert desc.action_kind == "discrete"
        assert len(desc.actions) == act_space.n
    else:
        assert isinstance(act_space, spaces.Box)
        assert desc.action_kind == "continuous"
        assert act_space.shape == (len(desc.actions),)


def test_curated_files_state_time_limit_and_threshold_explicitly() -> None:
    for env_id, data in RAW.items():
        assert "time_limit" in data, env_id
        assert "solved_threshold" in data, env_id
        assert data["threshold_source"], env_id


def test_curated_thresholds_without_gymnasium_value_are_documented() -> None:
    assert CURATED["CliffWalking-v1"].solved_threshold == -13.0
    assert CURATED["Blackjack-v1"].solved_threshold is None
    assert CURATED["CliffWalking-v1"].time_limit is None
    assert "community" in RAW["CliffWalking-v1"]["threshold_source"]


def test_toy_text_encodings_are_explained() -> None:
    lake = CURATED["FrozenLake-v1"]
    assert "row*4 + col" in lake.observation[0].meaning
    assert "SFFF\n    FHFH" in lake.summary  # the map keeps its shape
    assert "slippery" in lake.summary
    taxi = CURATED["Taxi-v4"]
    assert "state // 100" in taxi.observation[0].meaning


@pytest.mark.parametrize("env_id", sorted(EXPECTED_CURATED))
def test_to_prompt_mentions_every_component_and_action(env_id: str) -> None:
    desc = CURATED[env_id]
    text = desc.to_prompt()
    assert env_id in text
    for comp in desc.observation:
        assert comp.name in text
    for act in desc.actions:
        assert act.name in text
    limit = str(desc.time_limit) if desc.time_limit else "Time limit: none"
    assert limit in text
    json.dumps(desc.to_dict())  # must be JSON-ready


def test_to_prompt_indexes_vector_observations() -> None:
    text = CURATED["CartPole-v1"].to_prompt()
    assert "obs[2] pole_angle" in text
    assert "0 push_left" in text
    assert "action[1] lateral_throttle" in CURATED["LunarLanderContinuous-v3"].to_prompt()
    assert "Solved: average return >= 475" in text


def test_parse_description_rejects_typos() -> None:
    data = dict(RAW["CartPole-v1"])
    data["rewrad"] = "oops"
    with pytest.raises(ValueError, match="unknown keys"):
        parse_description(data, "x.toml")
    data = {k: v for k, v in RAW["CartPole-v1"].items() if k != "time_limit"}
    with pytest.raises(ValueError, match="time_limit"):
        parse_description(data, "x.toml")


# --- resolution ----------------------------------------------------------------------------


def test_curated_id_resolves_without_constructing(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args, **kwargs):
        raise AssertionError("resolve_env built an environment for a curated id")

    monkeypatch.setattr(gymnasium, "make", boom)
    resolved = resolve_env("CartPole-v1")
    assert resolved.id == "CartPole-v1"
    assert resolved.notice is None
    assert resolved.description is CURATED["CartPole-v1"]
    assert resolved.solved_threshold == 475.0
    assert resolved.max_episode_steps == 500
    assert resolved.gymnasium_version == gymnasium.__version__
    assert resolved.label() == "CartPole-v1"


@pytest.mark.parametrize(
    ("typed", "runs"),
    [
        ("LunarLander-v2", "LunarLander-v3"),
        ("LunarLanderContinuous-v2", "LunarLanderContinuous-v3"),
        ("Taxi-v3", "Taxi-v4"),
        ("CliffWalking-v0", "CliffWalking-v1"),
        ("BipedalWalker-v2", "BipedalWalker-v3"),
        ("FrozenLake-v0", "FrozenLake-v1"),  # not in the table: from gymnasium's DeprecatedEnv message
        ("Pendulum-v0", "Pendulum-v1"),
    ],
)
def test_retired_ids_are_aliased_with_notice(typed: str, runs: str) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        resolved = resolve_env(typed)
    assert not caught, [str(w.message) for w in caught]
    assert resolved.requested == typed
    assert resolved.id == runs
    assert resolved.description.id == runs
    assert not resolved.description.generated
    assert resolved.notice is not None and "\n" not in resolved.notice
    assert typed in resolved.notice and runs in resolved.notice and "retired" in resolved.notice


def test_lunar_lander_alias_notice_wording() -> None:
    notice = resolve_env("LunarLander-v2").notice
    minor = ".".join(gymnasium.__version__.split(".")[:2])
    assert notice == f"LunarLander-v2 was retired by gymnasium {minor}; running LunarLander-v3"


def test_continuous_lander_falls_back_to_kwargs(monkeypatch: pytest.MonkeyPatch) -> None:
    """If gymnasium drops LunarLanderContinuous-v3, both spellings still run the continuous lander."""
    monkeypatch.delitem(gymnasium.registry, "LunarLanderContinuous-v3")
    for typed in ("LunarLanderContinuous-v3", "LunarLanderContinuous-v2"):
        resolved = resolve_env(typed)
        assert resolved.id == "LunarLander-v3"
        assert resolved.kwargs == (("continuous", True),)
        assert resolved.description.id == "LunarLanderContinuous-v3"
        assert resolved.label() == "LunarLander-v3 (continuous=True)"
        assert "LunarLander-v3 (continuous=True)" in resolved.notice
        env = resolved.make()
        try:
            assert isinstance(env.action_space, spaces.Box)
            assert env.action_space.shape == (2,)
        finally:
            env.close()


def test_unversioned_name_runs_latest_with_notice() -> None:
    resolved = resolve_env("CartPole")
    assert resolved.id == "CartPole-v1"
    assert "latest" in resolved.notice


def test_unknown_id_suggests_close_match() -> None:
    with pytest.raises(EnvError) as info:
        resolve_env("CartPol-v1")
    message = str(info.value)
    assert "\n" not in message
    assert "unknown environment 'CartPol-v1'" in message
    assert "'CartPole-v1'" in message
    assert "scriptrl envs" in message and "module:Class" in message
    assert isinstance(info.value, UserError)


def test_unknown_id_message_without_suggestion() -> None:
    with pytest.raises(EnvError) as info:
        resolve_env("Foo-v9")
    assert str(info.value) == (
        "unknown environment 'Foo-v9': not a gymnasium id; "
        "run `scriptrl envs` to list known ones, or pass module:Class"
    )


@pytest.mark.parametrize("typed", ["cartpole-v1", "CartPole-v7", "not an id!", "  "])
def test_bad_names_are_one_line_env_errors(typed: str) -> None:
    with pytest.raises(EnvError) as info:
        resolve_env(typed)
    assert "\n" not in str(info.value)


def test_case_mistake_suggests_exact_id() -> None:
    with pytest.raises(EnvError, match="did you mean 'CartPole-v1'"):
        resolve_env("cartpole-v1")


def test_env_that_cannot_be_built_is_one_line_error() -> None:
    # Registered by gymnasium with an entry point that raises ImportError (moved to gymnasium-robotics).
    with pytest.raises(EnvError) as info:
        resolve_env("HalfCheetah-v2")
    message = str(info.value)
    assert "\n" not in message and "HalfCheetah-v2" in message and "ImportError" in message


def test_uncurated_id_gets_generated_description() -> None:
    resolved = resolve_env("CartPole-v0")
    desc = resolved.description
    assert resolved.id == "CartPole-v0" and resolved.notice is None
    assert desc.generated
    assert desc.id == "CartPole-v0"
    assert [c.name for c in desc.observation] == ["obs[0]", "obs[1]", "obs[2]", "obs[3]"]
    # the velocity's space bound is +-inf: its typical range is measured by random-action episodes,
    # and no measured range is wider than the space (the cart position's 4.8)
    velocity = desc.observation[1]
    assert (
        velocity.low is not None and velocity.high is not None and -5 < velocity.low < 0 < velocity.high < 5
    )
    assert -4.8 <= desc.observation[0].low < 0 < desc.observation[0].high <= 4.8
    assert "measured from 5 episodes with random actions" in desc.summary
    assert [a.name for a in desc.actions] == ["action_0", "action_1"]
    assert desc.time_limit == 200 and desc.solved_threshold == 195.0
    assert "documentation" in desc.reward and "documentation" in desc.termination
    assert "obs[3]" in desc.to_prompt()
    assert "Time limit: 200 steps" in desc.to_prompt()


def test_describe_spaces_handles_common_spaces() -> None:
    desc = describe_spaces(
        "X-v0",
        spaces.Tuple((spaces.Discrete(3), spaces.Box(-1.0, 1.0, (2,)))),
        spaces.Box(np.array([-1.0, 0.0], np.float32), np.array([1.0, np.inf], np.float32)),
        None,
        None,
    )
    assert desc.observation_kind == "tuple"
    assert [c.name for c in desc.observation] == ["obs[0]", "obs[1][0]", "obs[1][1]"]
    assert desc.action_kind == "continuous" and len(desc.actions) == 2
    assert "None" in desc.actions[1].meaning  # an infinite bound is not shown as inf
    assert desc.time_limit is None and desc.solved_threshold is None
    image = describe_spaces("Img-v0", spaces.Box(0, 255, (96, 96, 3), np.uint8), spaces.Discrete(5), 10, 1.0)
    assert image.observation_kind == "image" and len(image.observation) == 1
    assert (image.observation[0].low, image.observation[0].high) == (0.0, 255.0)
    discrete = describe_spaces("D-v0", spaces.Discrete(16), spaces.Discrete(4), 100, 0.7)
    assert discrete.observation_kind == "discrete"
    assert (discrete.observation[0].low, discrete.observation[0].high) == (0.0, 15.0)


# --- custom environments -------------------------------------------------------------------


def test_module_class_environment() -> None:
    resolved = resolve_env("custom_env_fixture:Corridor")
    assert resolved.id == "custom_env_fixture:Corridor"
    desc = resolved.description
    assert desc.generated and desc.observation_kind == "vector" and len(desc.observation) == 2
    # obs[1] is declared [-1, inf) and always 0: measured, a unit range around it, within the space
    assert (desc.observation[1].low, desc.observation[1].high) == (-0.5, 0.5)
    assert desc.time_limit == 25 and desc.solved_threshold == 0.5
    assert desc.title == "Walk right along a short corridor to the exit."  # from the class docstring

    env = resolved.make()
    try:
        assert isinstance(env, TimeLimit)
        env.reset(seed=0)
        steps, truncated, terminated = 0, False, False
        while not (terminated or truncated):
            _, _, terminated, truncated, _ = env.step(0)  # walks into the wall forever
            steps += 1
        assert truncated and steps == 25
    finally:
        env.close()


def test_module_class_errors_are_one_line() -> None:
    with pytest.raises(EnvError, match="cannot import module 'no_such_module_xyz'") as info:
        resolve_env("no_such_module_xyz:Env")
    assert "\n" not in str(info.value)
    with pytest.raises(EnvError, match="no class or registered id 'Nope'"):
        resolve_env("custom_env_fixture:Nope")
    with pytest.raises(EnvError, match="cannot import module 'no_such_module_xyz'"):
        resolve_env("CartPole-v1", imports=["no_such_module_xyz"])
    with pytest.raises(EnvError, match="not a gymnasium environment"):
        resolve_env("json:JSONDecoder")


def test_imports_register_an_id(monkeypatch: pytest.MonkeyPatch) -> None:
    from custom_env_fixture import CORRIDOR_ID

    # Start from a process where the fixture module was never imported.
    monkeypatch.delitem(sys.modules, "custom_env_fixture", raising=False)
    monkeypatch.delitem(gymnasium.registry, CORRIDOR_ID, raising=False)
    with pytest.raises(EnvError):
        resolve_env(CORRIDOR_ID)

    resolved = resolve_env(CORRIDOR_ID, imports=("custom_env_fixture",))
    assert resolved.id == CORRIDOR_ID
    assert resolved.imports == ("custom_env_fixture",)
    assert resolved.description.generated
    assert resolved.max_episode_steps == 30 and resolved.solved_threshold == 0.9


def test_module_colon_id_form() -> None:
    resolved = resolve_env("custom_env_fixture:ScriptrlCorridor-v0")
    assert resolved.id == "ScriptrlCorridor-v0"
    assert "custom_env_fixture" in resolved.imports


def test_module_in_working_directory_is_found(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    """The console script does not put the cwd on sys.path; a user's env file next to them must still work."""
    (tmp_path / "scriptrl_cwd_env.py").write_text(
        "from custom_env_fixture import Corridor as CwdCorridor\n", encoding="utf-8"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    monkeypatch.delitem(sys.modules, "scriptrl_cwd_env", raising=False)
    try:
        resolved = resolve_env("scriptrl_cwd_env:CwdCorridor")
        assert resolved.description.time_limit == 25
    finally:
        sys.modules.pop("scriptrl_cwd_env", None)


# --- ResolvedEnv behaviour -----------------------------------------------------------------


@pytest.mark.parametrize(
    "typed", ["CartPole-v1", "LunarLander-v2", "Taxi-v3", "CartPole-v0", "custom_env_fixture:Corridor"]
)
def test_resolved_env_pickles_and_makes(typed: str) -> None:
    resolved = resolve_env(typed)
    clone = pickle.loads(pickle.dumps(resolved))
    assert clone == resolved
    assert isinstance(clone, ResolvedEnv)
    env = clone.make()
    try:
        obs, _ = env.reset(seed=0)
        env.step(env.action_space.sample())
        if clone.max_episode_steps is not None and not clone.id.count(":"):
            assert env.spec.max_episode_steps == clone.max_episode_steps
    finally:
        env.close()


@pytest.mark.parametrize("env_id", sorted(EXPECTED_CURATED))
def test_make_matches_time_limit(env_id: str) -> None:
    resolved = resolve_env(env_id)
    env = resolved.make()
    try:
        assert env.spec.id == env_id
        assert env.spec.max_episode_steps == resolved.max_episode_steps
        if resolved.max_episode_steps is not None:
            assert env.get_wrapper_attr("_max_episode_steps") == resolved.max_episode_steps
    finally:
        env.close()


def test_make_returns_fresh_envs_and_passes_render_mode() -> None:
    resolved = resolve_env("CartPole-v1")
    first, second = resolved.make(), resolved.make()
    try:
        assert first is not second
    finally:
        first.close()
        second.close()
    env = resolved.make(render_mode="rgb_array")
    try:
        assert env.render_mode == "rgb_array"
    finally:
        env.close()
    env = resolve_env("custom_env_fixture:Corridor").make(render_mode=None)
    env.close()


def test_public_dataclasses_are_frozen() -> None:
    comp = ObsComponent("a", "b", "c", None, 1.0)
    with pytest.raises(AttributeError):
        comp.name = "z"  # type: ignore[misc]
    desc = EnvDescription(
        id="X-v0",
        title="t",
        summary="s",
        observation_kind="vector",
        observation=(comp,),
        action_kind="discrete",
        actions=(ActionInfo("go", "go"),),
        reward="r",
        termination="e",
        time_limit=None,
        solved_threshold=None,
    )
    assert desc.generated is False
    assert desc.to_dict()["observation"][0]["high"] == 1.0


class _WideBounds(gymnasium.Env):
    """Declares +-20 for numbers that stay within about +-1: the probe must say so."""

    observation_space = gymnasium.spaces.Box(-20.0, 20.0, shape=(2,))
    action_space = gymnasium.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.x = 0.0
        return np.array([self.x, 0.5], dtype=np.float32), {}

    def step(self, action):
        self.x = float(np.clip(self.x + (0.1 if action else -0.1), -1.0, 1.0))
        return np.array([self.x, 0.5], dtype=np.float32), 0.0, False, False, {}


def test_probe_measures_typical_ranges_narrower_than_declared_bounds() -> None:
    from scriptrl.envs.probe import measured_ranges

    ranges = measured_ranges(_WideBounds)
    assert ranges is not None
    (x_low, x_high), (c_low, c_high) = ranges
    assert -1.6 <= x_low < 0 < x_high <= 1.6  # within +-1, widened by a quarter of the span
    assert x_low == -x_high  # a signed number keeps 0 as its centre, whichever way the walk drifted
    assert c_low == pytest.approx(0.0) and c_high == pytest.approx(1.0)  # a constant: a unit range
    assert measured_ranges(_WideBounds).tolist() == ranges.tolist()  # fixed seeds: the same everywhere
