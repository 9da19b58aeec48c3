"""explain's failed-episode section on real CartPole-v1 (and highway-fast-v0, slow): each failed
episode's last decisions, the line that chose each, the values its conditions compared, GIFs of the
worst three."""

import json

import pytest
from PIL import Image

from scriptrl.glassbox.crashes import is_failure
from scriptrl.glassbox.trace import _clean_trace, explain

from checkout import CRASHES, EXAMPLES

PLANTED = CRASHES / "cartpole_drifts_right.py"
SOURCE = PLANTED.read_text()


def _line(text: str) -> int:
    return next(i for i, line in enumerate(SOURCE.splitlines(), start=1) if text in line)


def test_each_failed_episode_has_its_last_decisions_with_line_and_values(tmp_path, cli):
    gifs = tmp_path / "gifs"
    args = ["explain", str(PLANTED), "--env", "CartPole-v1", "--episodes", "10", "--last", "3"]
    p = cli(*args, "--gifs", str(gifs), "--json")
    assert p.returncode == 0, p.stderr
    ex = json.loads(p.stdout.strip().splitlines()[-1])
    failed = [e for e in ex["episodes"] if e["end"] == "terminated"]
    assert len(failed) == 4 and all(e["success"] is False for e in failed)
    assert all(e["success"] and e["end"] == "truncated" for e in ex["episodes"] if e not in failed)
    crashes = ex["crashes"]
    # Only the failed episodes, worst (lowest return) first.
    assert sorted(c["seed"] for c in crashes) == sorted(e["seed"] for e in failed)
    assert [c["return"] for c in crashes] == sorted(c["return"] for c in crashes)
    fatal = _line("        return 1")
    guard_line = _line("if position")
    for c in crashes:
        steps = [d["step"] for d in c["decisions"]]
        assert steps == [c["length"] - 3, c["length"] - 2, c["length"] - 1]  # the last three, in order
        for d in c["decisions"]:
            # The planted bug chose every one of them: the guard held, with the position it compared.
            assert (d["action"], d["action_name"], d["code"]) == (1, "push_right", "return 1")
            assert d["line"] == fatal
            guard = d["conditions"][0]
            assert (guard["line"], guard["expr"], guard["value"]) == (guard_line, "position > 0.3", True)
            assert guard["compared"] == [{"expr": "position", "value": d["observation"]["cart_position"]}]
            assert guard["compared"][0]["value"] > 0.3
            assert len(d["observation"]) == 4
    # GIFs of the worst three only, each the whole episode (the reset frame and one per step).
    made = sorted(p.name for p in gifs.iterdir())
    assert made == sorted(f"seed-{c['seed']}.gif" for c in crashes[:3])
    assert "gif" not in crashes[3] and all(c["gif"] for c in crashes[:3])
    assert all(c["gif_frames"] == c["length"] + 1 for c in crashes[:3])
    with Image.open(crashes[0]["gif"]) as gif:  # (PIL merges frames that did not change)
        assert gif.format == "GIF" and gif.is_animated and gif.n_frames > crashes[0]["length"] / 2


def test_console_shows_the_failed_episodes_worst_first(cli):
    p = cli("explain", str(PLANTED), "--env", "CartPole-v1", "--episodes", "10", "--crashes", "2")
    assert p.returncode == 0, p.stderr
    out = p.stdout
    assert "Failed episodes: 4 (worst first)" in out
    assert "seed 4: terminated after 108 steps, return 108.00, not successful; its last 5 decisions" in out
    assert "line 6: position > 0.3 is True" in out and "(position =" in out and "1 push_right" in out
    assert "cart_position=" in out and "... and 2 more failed episodes" in out
    assert out.index("seed 4: terminated") < out.index("seed 8: terminated")


def test_both_sides_of_a_comparison_are_recorded():
    source = (
        "def policy(obs):\n"
        "    angle, spin = obs[2], obs[3]\n"
        "    return 1 if angle > 100.0 * spin + 5 else 0\n"  # never true: the pole falls left
    )
    ex = explain(source, "CartPole-v1", episodes=1, seed=3, last=2)
    (crash,) = ex.crashes
    for d in crash["decisions"]:
        (cond,) = d["conditions"]
        angle, right = cond["compared"]
        assert cond["value"] is False and angle["expr"] == "angle" and right["expr"] == "100.0 * spin + 5"
        assert angle["value"] == d["observation"]["pole_angle"]
        spin = d["observation"]["pole_angular_velocity"]
        assert right["value"] == pytest.approx(100.0 * spin + 5, abs=0.02)


def test_what_counts_as_a_failed_episode():
    assert is_failure("terminated", None) and not is_failure("truncated", None)
    assert is_failure("truncated", False)  # unsuccessful by the rule although it ran out of time
    assert not is_failure("terminated", True)  # a landing terminates and succeeds
    assert is_failure("failure", True) and is_failure("failure", None)


def test_untrusted_compared_values_are_checked():
    junk = {"c": [[0, 1]], "v": [[0, 0, 1.5], [0, 1, "inf"], [5, 0, 1.0], [0, 0, "x"], [0, 99, 1.0], "z"]}
    assert _clean_trace(junk, n_sites=1, n_lines=5)["v"] == [(0, 0, 1.5), (0, 1, "inf")]


@pytest.mark.slow
def test_highway_crash_names_the_braking_line_and_renders(tmp_path):
    """The docs' learned highway program on held-out scenario 1022: it brakes into the car ahead."""
    pytest.importorskip("highway_env")
    policy = EXAMPLES / "highway_linear_score.py"
    lines = policy.read_text().splitlines()
    ex = explain(policy.read_text(), "highway-fast-v0", seed=1022, episodes=1, gifs=tmp_path)
    (crash,) = ex.crashes
    assert crash["end"] == "terminated" and crash["length"] < 30
    last = crash["decisions"][-1]
    assert last["action_name"] == "SLOWER" and lines[last["line"] - 1].strip() == "return 4"
    braking = next(c for c in last["conditions"] if c["expr"] == "u < -0.273")
    assert braking["value"] is True and braking["compared"][0]["value"] < -0.273
    assert last["observation"]["front_gap"] < 5 and last["observation"]["left_rear_gap"] == 100
    assert crash["gif_frames"] == crash["length"] + 1
    with Image.open(crash["gif"]) as gif:
        assert gif.n_frames > 3
        gif.seek(gif.n_frames - 1)
        assert len(set(gif.convert("RGB").get_flattened_data())) > 3  # a drawn road, not black frames
