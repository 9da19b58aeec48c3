"""report and export on a real, finished CartPole-v1 run: the page in a real browser, the file in a
bare Python."""

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace

import gymnasium
import numpy as np
import pytest

import scriptrl
from scriptrl.store import RunStore

SECTIONS = ("summary", "curves", "lineage", "diffs", "best", "crashes", "shield", "cost", "protocol")


@pytest.fixture(scope="module")
def run(tmp_path_factory, cli):
    """A short real search (a few iterations) with a promotion, tuning and a lineage.

    Trained by the CLI in its own process, so no warm sandbox spare outlives it in this one.
    """
    root = tmp_path_factory.mktemp("glassbox")
    p = cli(
        "train",
        "CartPole-v1",
        "--run-dir",
        str(root / "run"),
        "--target",
        "500",
        "--max-iterations",
        "4",
        "--workers",
        "2",
        "--seed",
        "0",  # two promotions (holdout 169, then 500): the holdout curve has a line to draw
        "--json",
    )
    assert p.returncode == 0, p.stderr[-2000:]
    summary = json.loads(p.stdout.strip().splitlines()[-1])
    assert summary["best_program_id"] is not None
    with RunStore.open(summary["run_dir"]) as store:
        source = store.program(summary["best_program_id"])["source"]
    return SimpleNamespace(
        run_dir=Path(summary["run_dir"]), best_holdout=summary["best_holdout"], best_source=source
    )


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    """A baseline in the store format with only events (a learner's periodic evaluations) and a stop."""
    d = tmp_path_factory.mktemp("baseline") / "ppo-like"
    with RunStore.create(d, {"env": "CartPole-v1", "kind": "baseline", "algo": "ppo"}) as store:
        store.add_event("start", {"env": "CartPole-v1"})
        for i, (steps, dev, hold) in enumerate(
            [(2000, 40.0, None), (6000, 150.0, 140.0), (12000, 320.0, 300.0)]
        ):
            data = {"iteration": i + 1, "env_steps": steps, "dev": dev}
            if hold is not None:
                data["holdout"] = hold
            store.add_event("checkpoint", data)
        store.add_event("stop", {"reason": "env-step budget reached"})
    return d


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append((tag, a))
        if "id" in a:
            self.ids.add(a["id"])


def test_report_is_one_self_contained_page_with_every_section(run, baseline, tmp_path, cli):
    out = tmp_path / "report.html"
    p = cli("report", str(run.run_dir), "-o", str(out), "--baseline", str(baseline))
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == str(out)
    html = out.read_text()
    page = _Page()
    page.feed(html)
    assert set(SECTIONS) <= page.ids
    # Nothing is loaded from anywhere: no external src/href, no <link>, and a CSP that forbids it.
    for tag, attrs in page.tags:
        assert tag != "link"
        for key in ("src", "href"):
            value = attrs.get(key) or ""
            assert not re.match(r"^(https?:)?//", value), (tag, attrs)
            if tag in ("script", "img", "iframe"):
                assert key not in attrs or value.startswith("data:"), (tag, attrs)
    assert "default-src 'none'" in html
    assert html.count("<svg") == 2 and "ppo-like (PPO)" in html  # both plots, with the baseline on the axes
    best = run.best_source.splitlines()[-1].strip().split()[0]
    assert best in html  # the best program, highlighted
    assert "offline.init" in html and ("structural" in html or "scalar" in html or "init" in html)
    for needle in ("1000–1049", "2000–2049", "gymnasium", "matplotlib", "prompt tokens", "cost (USD)"):
        assert needle in html, needle


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


def test_report_renders_in_headless_chromium_without_errors(run, baseline, tmp_path, cli):
    browser = _chromium()
    if browser is None:
        pytest.skip(
            "headless Chromium is not installed (Debian: apt-get install -y chromium);"
            " the report was not opened"
        )
    out = tmp_path / "report.html"
    assert cli("report", str(run.run_dir), "-o", str(out), "--baseline", str(baseline)).returncode == 0
    flags = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    dom = subprocess.run([*flags, "--dump-dom", out.as_uri()], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    body = re.search(r"<body[^>]*>", dom.stdout).group(0)
    # The page's own script ran (in a real browser) and found no script or console error,
    # every plot laid out as an SVG with a size, and every section has a height on screen.
    assert 'data-errors="0"' in body, body
    assert 'data-plots="iteration steps"' in body, body
    shown = re.search(r'data-sections="([^"]*)"', body).group(1).split()
    assert shown == list(SECTIONS), body
    shot = tmp_path / "report.png"
    p = subprocess.run(
        [*flags, "--window-size=1280,1400", f"--screenshot={shot}", out.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 0 and shot.is_file(), p.stderr[-2000:]
    from PIL import Image

    pixels = np.asarray(Image.open(shot).convert("RGB")).reshape(-1, 3).astype(int)
    assert pixels.std() > 10  # not a blank page

    def near(color: str) -> int:
        rgb = np.array([int(color[i : i + 2], 16) for i in (1, 3, 5)])
        return int((np.abs(pixels - rgb).sum(1) < 40).sum())

    # The curves were drawn: the run's dev (blue) and holdout (red) lines and the baseline's colour.
    assert near("#1f77b4") > 200 and near("#d62728") > 200 and near("#2ca02c") > 50
    # The page's policy lets only its own scripts run: text that slipped into it could not.
    injected = tmp_path / "injected.html"
    marker = '<script>document.body.setAttribute("data-injected", "1")</script>'
    injected.write_text(out.read_text().replace("</main>", marker + "</main>"))
    dom = subprocess.run(
        [*flags, "--dump-dom", injected.as_uri()], capture_output=True, text=True, timeout=120
    )
    body = re.search(r"<body[^>]*>", dom.stdout).group(0)
    assert 'data-errors="0"' in body and "data-injected" not in body, body
    keep = os.environ.get("SCRIPTRL_KEEP_SCREENSHOT")
    if keep:
        shutil.copy(shot, keep)


def test_report_bad_input_is_one_line(tmp_path, baseline, cli):
    p = cli("report", str(tmp_path / "nope"))
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and "not a folder" in p.stderr
    p = cli("report", str(baseline), "--baseline", str(tmp_path))
    assert p.returncode == 2 and "--baseline" in p.stderr and "run.sqlite" in p.stderr


def _card(text: str) -> dict[str, str]:
    fields = {}
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        m = re.match(r"# ([a-z ]+):\s+(.*)$", line)
        if m:
            fields[m.group(1).strip()] = m.group(2)
    return fields


_BARE_RUNNER = textwrap.dedent(
    """
    import json, sys
    sys.path[:0] = [sys.argv[1], sys.argv[2]]   # numpy alone, and the exported file's folder
    try:
        import gymnasium
    except ImportError:
        pass
    else:
        raise SystemExit("gymnasium is importable: this is not a bare Python")
    import numpy as np
    module = __import__(sys.argv[3])
    for line in sys.stdin:
        obs = np.asarray(json.loads(line), dtype=np.float32)
        sys.stdout.write(json.dumps(int(module.policy(obs))) + "\\n")
        sys.stdout.flush()
    """
)


def test_export_runs_in_a_bare_python_and_scores_what_the_card_says(run, tmp_path, cli):
    out = tmp_path / "exported" / "cartpole_policy.py"
    p = cli("export", str(run.run_dir), "-o", str(out))
    assert p.returncode == 0, p.stderr
    text = out.read_text()
    card = _card(text)
    for key in (
        "environment",
        "seed protocol",
        "holdout",
        "audit",
        "written by",
        "lineage cost",
        "run cost",
        "exported by",
    ):
        assert key in card, (key, card)
    assert card["environment"] == f"CartPole-v1 (gymnasium {gymnasium.__version__})"
    assert f"scriptrl {scriptrl.__version__} on 20" in card["exported by"]
    assert "95% CI" in card["holdout"] and "95% CI" in card["audit"] and "1000-1049" in card["holdout"]
    assert "offline" in card["written by"] and "tokens" in card["lineage cost"] and "$" in card["run cost"]
    card_holdout = float(card["holdout"].split()[0])
    assert card_holdout == pytest.approx(run.best_holdout, abs=0.005)

    # A bare interpreter: no site-packages, only numpy on the path; the trusted side steps the
    # environment for the card's holdout seeds and the exported file alone picks every action.
    numpy_only = tmp_path / "numpy_only"
    numpy_only.mkdir()
    np_dir = Path(np.__file__).parent
    (numpy_only / "numpy").symlink_to(np_dir)
    libs = np_dir.parent / "numpy.libs"
    if libs.is_dir():
        (numpy_only / "numpy.libs").symlink_to(libs)
    bare = subprocess.Popen(
        [sys.executable, "-I", "-S", "-c", _BARE_RUNNER, str(numpy_only), str(out.parent), out.stem],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    env = gymnasium.make("CartPole-v1")
    returns = []
    try:
        for seed in range(1000, 1050):
            obs, _ = env.reset(seed=seed)
            total, done = 0.0, False
            while not done:
                bare.stdin.write(json.dumps(obs.tolist()) + "\n")
                bare.stdin.flush()
                line = bare.stdout.readline()
                assert line, bare.stderr.read()
                obs, r, term, trunc, _ = env.step(json.loads(line))
                total += r
                done = term or trunc
            returns.append(total)
    finally:
        bare.stdin.close()
        bare.wait(timeout=30)
        env.close()
    assert bare.returncode == 0, bare.stderr.read()
    assert sum(returns) / len(returns) == pytest.approx(card_holdout, abs=0.005)

    # And scriptrl itself accepts the exported file as is (static checks, sandbox).
    p = cli("eval", str(out), "--env", "CartPole-v1", "--split", "holdout", "--json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout.strip().splitlines()[-1])["mean"] == pytest.approx(card_holdout, abs=0.005)


def test_export_errors_are_one_line(run, tmp_path, cli):
    p = cli("export", str(run.run_dir), "-o", str(tmp_path / "x.py"), "--program", "999999")
    assert p.returncode == 2 and "no program 999999" in p.stderr
    p = cli("export", str(tmp_path / "missing"), "-o", str(tmp_path / "x.py"))
    assert p.returncode == 2 and p.stderr.count("\n") == 1


def test_a_failed_export_or_report_write_keeps_the_old_file_and_no_temp(run, tmp_path, monkeypatch):
    from scriptrl.errors import UserError
    from scriptrl.glassbox.export import export_policy
    from scriptrl.glassbox.report.html import write_report

    policy, report = tmp_path / "policy.py", tmp_path / "report.html"
    export_policy(run.run_dir, policy)
    write_report(run.run_dir, report)
    before = {p: p.read_text() for p in (policy, report)}

    def boom(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(UserError, match="cannot write .*No space left on device"):
        export_policy(run.run_dir, policy)
    with pytest.raises(UserError, match="cannot write .*No space left on device"):
        write_report(run.run_dir, report)
    assert {p: p.read_text() for p in (policy, report)} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["policy.py", "report.html"]
