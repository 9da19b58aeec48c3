"""report --crashes on a real run store whose champion fails held-out episodes: the champion's failed
held-out seeds replayed for their last decisions and GIFs, in the page and in a real browser."""

import re
import shutil
import subprocess
from html import unescape

import pytest

from scriptrl.evaluate import evaluate
from scriptrl.store import RunStore

from checkout import CRASHES

PLANTED = CRASHES / "cartpole_drifts_right.py"
HOLDOUT = list(range(1010, 1020))  # the planted bug drops the pole on 1010, 1014, 1017 and 1018


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A run whose champion is the planted policy, its holdout evaluation run for real."""
    d = tmp_path_factory.mktemp("crashes") / "run"
    source = PLANTED.read_text()
    result = evaluate(source, "CartPole-v1", HOLDOUT, split="holdout")
    with RunStore.create(d, {"env": "CartPole-v1", "seed": 0}) as store:
        pid = store.add_program(source, "planted", [], "hand", "init", 0.0, None, 0)
        store.add_evaluation(pid, "holdout", "holdout", result)
        store.add_event("promotion", {"id": pid})
    return d


def _crash_blocks(html: str) -> list[str]:
    return re.findall(r'<div class="crash" data-crash="(\d+)">', html)


def test_report_shows_each_failed_holdout_episode_with_its_last_decisions(run_dir, tmp_path, cli):
    out = tmp_path / "report.html"
    p = cli("report", str(run_dir), "-o", str(out), "--crashes", "--last", "2")
    assert p.returncode == 0, p.stderr
    html = out.read_text()
    assert "4 of 10 held-out episodes failed" in html and "4 failed again" in html
    # Worst (lowest return) first, every failed seed and no other.
    seeds = [int(s) for s in _crash_blocks(html)]
    assert sorted(seeds) == [1010, 1014, 1017, 1018] and seeds[0] == 1017
    section = html[html.index('id="crashes"') : html.index('id="shield"')]
    text = unescape(section)
    assert "seed 1017: terminated after 86 steps, return 86.00, not successful" in text
    assert text.count("line 6: position > 0.3 is True (position = ") == 4 * 2  # 2 decisions each
    assert "<code>return 1</code>" in section and "1 push_right" in text and "cart_position=" in text
    # GIFs of the worst three, inlined: the page still loads nothing.
    gifs = re.findall(r'<img data-gif="(\d+)" alt="[^"]*" src="(data:image/gif;base64,[^"]+)"', section)
    assert [int(s) for s, _ in gifs] == seeds[:3]


def test_without_the_option_the_section_says_how_to_get_it(run_dir, tmp_path, cli):
    out = tmp_path / "plain.html"
    assert cli("report", str(run_dir), "-o", str(out)).returncode == 0
    html = out.read_text()
    assert 'id="crashes"' in html and "--crashes</code> replays" in html and not _crash_blocks(html)


def test_the_failed_episodes_and_gifs_show_in_headless_chromium(run_dir, tmp_path, cli):
    names = ("chromium", "chromium-browser", "google-chrome")
    browser = next((shutil.which(n) for n in names if shutil.which(n)), None)
    if browser is None:
        pytest.skip("headless Chromium is not installed (Debian: apt-get install -y chromium)")
    out = tmp_path / "report.html"
    assert cli("report", str(run_dir), "-o", str(out), "--crashes").returncode == 0
    flags = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
    flags += ["--no-first-run", f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([*flags, "--dump-dom", out.as_uri()], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    body = re.search(r"<body[^>]*>", dom.stdout).group(0)
    assert 'data-errors="0"' in body, body
    assert "crashes" in re.search(r'data-sections="([^"]*)"', body).group(1).split()
    # The three GIFs decoded as images with a size in a real browser (CSP allows data: images only).
    assert sorted(re.search(r'data-gifs="([^"]*)"', body).group(1).split()) == ["1014", "1017", "1018"]


def test_a_champion_without_failed_holdout_episodes_says_so(tmp_path, cli):
    from checkout import VERIFY_FAULTS

    source = (VERIFY_FAULTS / "correct.py").read_text()
    d = tmp_path / "run"
    with RunStore.create(d, {"env": "CartPole-v1", "seed": 0}) as store:
        pid = store.add_program(source, "correct", [], "hand", "init", 0.0, None, 0)
        store.add_evaluation(pid, "holdout", "holdout", evaluate(source, "CartPole-v1", [1000, 1001]))
        store.add_event("promotion", {"id": pid})
    out = tmp_path / "report.html"
    assert cli("report", str(d), "-o", str(out), "--crashes").returncode == 0
    html = out.read_text()
    assert "None of the best program's 2 held-out episodes failed." in unescape(html)
    assert not _crash_blocks(html)
