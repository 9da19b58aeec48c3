"""render: one real episode as an animated GIF, the policy in the sandbox and the renderer here."""

import json

from PIL import Image

from scriptrl.glassbox.render import render_episode

from checkout import VERIFY_FAULTS

CORRECT = VERIFY_FAULTS / "correct.py"


def test_render_cartpole_episode_to_gif(tmp_path, cli):
    out = tmp_path / "episode.gif"
    p = cli(
        "render",
        str(CORRECT),
        "--env",
        "CartPole-v1",
        "--seed",
        "3",
        "-o",
        str(out),
        "--every",
        "5",
        "--json",
    )
    assert p.returncode == 0, p.stderr
    info = json.loads(p.stdout.strip().splitlines()[-1])
    assert (
        info["length"] == 500 and info["return"] == 500.0 and info["frames"] == 101
    )  # reset + 500 steps, every 5th
    assert info["isolation"]["process"].startswith("on")
    with Image.open(out) as gif:
        assert gif.format == "GIF" and gif.size == (600, 400) and gif.is_animated
        gif.seek(0)
        first = gif.convert("RGB")
        assert len(set(first.get_flattened_data())) > 3  # a drawn cart and pole, not a blank frame


def test_render_a_box2d_environment_and_a_short_episode(tmp_path):
    out = tmp_path / "lander.gif"
    info = render_episode("def policy(obs):\n    return 0\n", "LunarLander-v3", out, seed=1, scale=0.5)
    assert info["end"] == "terminated" and 20 < info["length"] < 1000
    with Image.open(out) as gif:
        assert gif.size == (300, 200) and gif.n_frames > 10


def test_render_refuses_other_formats_and_reports_a_failing_policy(tmp_path, cli):
    p = cli("render", str(CORRECT), "--env", "CartPole-v1", "-o", str(tmp_path / "x.mp4"))
    assert p.returncode == 2 and ".gif" in p.stderr
    bad = tmp_path / "bad.py"
    bad.write_text(
        "def policy(obs):\n    if obs[2] < -0.02:\n        raise ValueError('tilt')\n    return 1\n"
    )
    p = cli("render", str(bad), "--env", "CartPole-v1", "-o", str(tmp_path / "bad.gif"))
    assert p.returncode == 0 and "failure" in p.stdout and "tilt" in p.stdout, p.stdout + p.stderr
    assert (tmp_path / "bad.gif").is_file()
