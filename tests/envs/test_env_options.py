"""Make-time environment options: parsed from flags and files, merged over a description's own,
carried in ResolvedEnv.kwargs so every worker builds the same environment."""

import pytest

from scriptrl.envs import options as env_options
from scriptrl.envs import resolve_env
from scriptrl.errors import UserError


def test_flags_nest_and_read_json_values():
    opts = env_options.from_flags(
        ["config.lanes_count=4", "config.vehicles_density=1.5", "mode=fast", "on=true"]
    )
    assert opts == {"config": {"lanes_count": 4, "vehicles_density": 1.5}, "mode": "fast", "on": True}


def test_bad_flag_is_a_one_line_error():
    with pytest.raises(UserError, match="KEY=VALUE"):
        env_options.from_flags(["lanes_count"])


def test_file_then_flags_deep_merge(tmp_path):
    f = tmp_path / "opts.toml"
    f.write_text("[config]\nlanes_count = 3\nduration = 40\n")
    assert env_options.gather(str(f), ["config.lanes_count=5"]) == {
        "config": {"lanes_count": 5, "duration": 40}
    }
    with pytest.raises(UserError, match="not found"):
        env_options.gather(str(tmp_path / "missing.toml"))


def test_options_reach_the_built_environment_and_its_label():
    renv = resolve_env("LunarLander-v3", options={"gravity": -5.0})
    assert dict(renv.kwargs)["gravity"] == -5.0 and "gravity=-5.0" in renv.label()
    env = renv.make()
    try:
        assert env.unwrapped.gravity == -5.0
    finally:
        env.close()
    assert resolve_env("LunarLander-v3").make().unwrapped.gravity == -10.0


def test_unknown_option_is_a_one_line_error():
    with pytest.raises(UserError, match="cannot create environment"):
        resolve_env("CartPole-v1", options={"no_such_option": 1})
