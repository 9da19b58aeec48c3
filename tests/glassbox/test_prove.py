"""verify --prove: a fault planted in a corner that sampling misses is REFUTED (confirmed in the sandbox),
the corrected program is PROVED, and what the translation cannot express is UNKNOWN with its line."""

import json
import subprocess
import sys
import time

import numpy as np
import pytest

from checkout import SHARED_HOSTILE as HOSTILE

z3 = pytest.importorskip("z3")

from scriptrl.envs import resolve_env  # noqa: E402
from scriptrl.glassbox.prove import prove  # noqa: E402
from scriptrl.glassbox.prove.program import translate_program  # noqa: E402
from scriptrl.glassbox.prove.properties import Property, PropertySet  # noqa: E402
from scriptrl.glassbox.prove.translate import Translator  # noqa: E402
from scriptrl.glassbox.prove.values import Vec  # noqa: E402
from scriptrl.glassbox.verify.asker import _Asker  # noqa: E402
from scriptrl.program import Program  # noqa: E402

CARTPOLE = resolve_env("CartPole-v1")
pytestmark = pytest.mark.slow  # every test here starts solver and sandbox processes
#: "Push left whenever the PD law says the pole is falling left."
PUSH_LEFT = "action == 0 or 10*obs[2] + 2*obs[3] + 0.1*obs[0] + 0.3*obs[1] > 0"
PD = (
    "    push = 10.0 * angle + 2.0 * angular_velocity + 0.1 * position + 0.3 * velocity\n"
    "    return 1 if push > 0 else 0\n"
)
CORNER = (
    "def policy(obs):\n    position, velocity, angle, angular_velocity = obs\n"
    "    if position > 4.7 and angle < -0.4 and angular_velocity < -2.95:\n        return 1\n" + PD
)
CORRECTED = "def policy(obs):\n    position, velocity, angle, angular_velocity = obs\n" + PD

#: Most of what the translator models, in one stateless class: constants, a table, a helper,
#: a bounded loop with break, a comprehension, clip, dot, argmax, min/max/abs and a ternary.
RICH = """
import numpy as np

GAINS = [0.1, 0.3, 10.0, 2.0]
TABLE = (0, 1, 1, 0, 1)


def squash(x, limit=1.0):
    return max(-limit, min(limit, x))


class Policy:
    scale = 1.0

    def reset(self, seed):
        self.bias = 0.0

    def act(self, obs):
        s = sum(g * o for g, o in zip(GAINS, obs)) * self.scale + self.bias
        votes = 0
        for i in range(4):
            if abs(obs[i]) > 3.5:
                break
            if obs[i] > 0:
                votes += 1
        if votes == 4 and obs[0] > 2.0:
            return TABLE[votes]
        clipped = np.clip(np.dot(np.array(GAINS), obs), -1.0, 1.0)
        score = int(np.argmax([squash(s), -squash(clipped)]))
        return 1 if score == 0 and s > 0 else 0
"""


def box_sample(n: int, rng: np.random.Generator) -> np.ndarray:
    lo = np.array([-4.8, -2.0, -0.418879, -3.0])
    return rng.uniform(lo, -lo, size=(n, 4)).astype(np.float32)


def sandbox_actions(source: str, observations: np.ndarray) -> list:
    asker = _Asker(Program(source), {"kind": "box", "dtype": "float32", "shape": [4]}, 0, False, 1.0)
    try:
        out = []
        for i in range(0, len(observations), 1000):
            out += asker.ask(list(observations[i : i + 1000]))[0]
        return out
    finally:
        asker.close()


def violates(o: np.ndarray, a: int) -> bool:
    o = o.astype(np.float64)
    return a != 0 and not 10 * o[2] + 2 * o[3] + 0.1 * o[0] + 0.3 * o[1] > 0


def test_a_corner_that_sampling_misses_is_refuted_and_the_sandbox_confirms_it():
    samples = box_sample(10_000, np.random.default_rng(1))
    actions = sandbox_actions(CORNER, samples)
    assert not any(violates(o, a) for o, a in zip(samples, actions, strict=True))  # sampling misses it
    report = prove(Program(CORNER, "corner.py"), CARTPOLE, [Property("push left", PUSH_LEFT)])
    (r,) = report.results
    assert r.verdict == "REFUTED", r.detail
    o = r.counterexample
    assert o[0] > 4.7 and o[2] < -0.4 and o[3] < -2.95 and r.action == 1
    assert r.replays[-1]["violates"] is True  # confirmed by the real program in the sandbox
    assert sandbox_actions(CORNER, np.array([o], dtype=np.float32)) == [1]
    assert report.exit_code == 1


def test_the_corrected_program_is_proved_and_the_box_says_where_it_came_from():
    report = prove(Program(CORRECTED), CARTPOLE, [Property("push left", PUSH_LEFT)])
    (r,) = report.results
    assert r.verdict == "PROVED", r.detail
    assert [b["from"] for b in r.box] == ["space", "description", "space", "description"]
    assert report.exit_code == 0


def test_a_stateless_policy_class_with_tables_loops_and_numpy_is_translated_exactly():
    # The translation must agree with the sandboxed program on observations across the box.
    obs = Vec([z3.Real(f"obs[{i}]") for i in range(4)], "array")
    model = translate_program(RICH, obs, Translator())
    samples = np.concatenate(
        [
            box_sample(300, np.random.default_rng(2)),
            np.array([[2.5, 0.5, 0.1, 0.2], [4.0, 1.0, 0.3, 3.9]], dtype=np.float32),
        ]
    )
    actions = sandbox_actions(RICH, samples)
    for o, a in zip(samples, actions, strict=True):
        sub = [(v, z3.RealVal(float(x))) for v, x in zip(obs.items, o, strict=True)]
        got = z3.simplify(
            z3.substitute(z3.IntVal(model.action) if isinstance(model.action, int) else model.action, *sub)
        )
        assert got.as_long() == a, (o, a)
    report = prove(
        Program(RICH),
        CARTPOLE,
        PropertySet(
            [
                Property("valid", "action in (0, 1)"),
                Property("votes", "action == 0 or obs[0] <= 2.0 or obs[1] <= 0"),
            ]
        ),
    )
    assert [r.verdict for r in report.results] == ["PROVED", "REFUTED"], [r.detail for r in report.results]
    o = report.results[1].counterexample
    assert o[0] > 2.0 and o[1] > 0 and report.results[1].action == 1


def unknown(source: str, expr: str = "action in (0, 1)", **kw) -> str:
    (r,) = prove(Program(source), CARTPOLE, [Property(expr, expr)], **kw).results
    assert r.verdict == "UNKNOWN", r.detail
    return r.detail


def test_unsupported_constructs_are_unknown_naming_the_construct_and_line():
    assert "line 4: a while loop" in unknown(
        "def policy(obs):\n    k = 0\n    x = obs[0]\n    while x > 0:\n        x -= 1\n    return 0\n"
    )
    assert "line 2: a string" in unknown(
        "def policy(obs):\n    mode = 'left' if obs[0] > 0 else 'right'\n"
        "    return 0 if mode == 'left' else 1\n"
    )
    stateful = (
        "class Policy:\n    def reset(self, seed):\n        self.n = 0\n    def act(self, obs):\n"
        "        self.n += 1\n        return self.n % 2\n"
    )
    assert "keeps state across calls: act() changes self.n" in unknown(stateful)
    assert "line 2: a division by a value that can be 0" in unknown(
        "def policy(obs):\n    r = 1.0 / obs[0]\n    return 1 if r > 0 else 0\n"
    )
    assert "math.sin" in unknown(
        "import math\ndef policy(obs):\n    return 1 if math.sin(obs[2]) > 0 else 0\n"
    )


def test_a_huge_or_hostile_program_is_unknown_within_the_limit():
    started = time.monotonic()
    assert "unroll" in unknown(
        "def policy(obs):\n    x = obs[0]\n    for i in range(50_000):\n        x = x + obs[1]\n"
        "    return 1 if x > 0 else 0\n"
    )
    assert "nested deeper" in unknown(
        "def f(x):\n    return f(x + 1)\n\ndef policy(obs):\n    return f(obs[0])\n"
    )
    long = (
        "def policy(obs):\n    x = obs[0]\n"
        + "    x = x * 0.5 + obs[1] if x > obs[2] else x - obs[3]\n" * 400
        + "    return 1 if x > 0 else 0\n"
    )
    assert "too large" in unknown(long, max_nodes=2_000)
    # Nonlinear arithmetic the solver cannot settle: the bounded solve gives up, it does not hang.
    poly = (
        "def policy(obs):\n    x, y, z, w = obs\n    p = x*x*x*y - 3*y*y*z*w + 7*x*z*z*w*w - w*w*w*x + 0.1\n"
        "    return 1 if p > 0 and x*y*z*w < 0.3 else 0\n"
    )
    report = prove(
        Program(poly),
        CARTPOLE,
        [Property("p", "action == 0 or obs[0]*obs[1]*obs[2] < 10")],
        max_seconds=6,
        per_check=3,
    )
    assert report.results[0].verdict in ("PROVED", "UNKNOWN")  # never wrongly refuted, and bounded
    assert time.monotonic() - started < 40


def cli(*args: str, prelude: str = "") -> subprocess.CompletedProcess:
    code = prelude + "import sys\nfrom scriptrl.cli import main\nsys.exit(main(sys.argv[1:]))\n"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300)


def test_cli_exit_codes_proved_refuted_unknown_and_a_properties_file(tmp_path):
    corner, corrected = tmp_path / "corner.py", tmp_path / "corrected.py"
    corner.write_text(CORNER)
    corrected.write_text(CORRECTED)
    p = cli(
        "verify", str(corrected), "--env", "CartPole-v1", "--prove", PUSH_LEFT, "--prove", "action in (0, 1)"
    )
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.count("PROVED") == 2
    props = tmp_path / "props.toml"
    props.write_text(
        f'[[property]]\nname = "push left"\nexpr = "{PUSH_LEFT}"\n'
        '[[property]]\nname = "valid"\nexpr = "action in (0, 1)"\n[property.ranges]\n"3" = [-10, 10]\n'
    )
    p = cli("verify", str(corner), "--env", "CartPole-v1", "--properties", str(props), "--json")
    assert p.returncode == 1, p.stdout + p.stderr
    report = json.loads(p.stdout.strip().splitlines()[-1])
    verdicts = {r["name"]: r for r in report["results"]}
    assert verdicts["push left"]["verdict"] == "REFUTED" and verdicts["valid"]["verdict"] == "PROVED"
    assert verdicts["valid"]["box"][3] == {"component": 3, "low": -10.0, "high": 10.0, "from": "user"}
    p = cli("verify", str(corner), "--env", "CartPole-v1", "--prove", "len(str(action)) == 1")
    assert p.returncode == 2 and "'str'" in p.stderr and p.stderr.count("\n") == 1
    (tmp_path / "loop.py").write_text(
        "def policy(obs):\n    while obs[0] > 0:\n        return 1\n    return 0\n"
    )
    p = cli("verify", str(tmp_path / "loop.py"), "--env", "CartPole-v1", "--prove", "action in (0, 1)")
    assert p.returncode == 3 and "UNKNOWN" in p.stdout and "while loop" in p.stdout
    p = cli(
        "verify",
        str(corner),
        "--env",
        "CartPole-v1",
        "--prove",
        "action == 0",
        prelude="import sys\nsys.modules['z3'] = None\n",
    )
    assert p.returncode == 2 and 'pip install -e ".[prove]"' in p.stderr


#: Pushes right whenever the pole leans and falls left: the shield's property catches exactly that.
RECKLESS = (
    "def policy(obs):\n    position, velocity, angle, angular_velocity = obs\n"
    "    if angle < -0.02 and angular_velocity < 0:\n        return 1\n" + PD
)


def test_the_runtime_shield_enforces_the_property_with_its_fallback_and_logs_it():
    from scriptrl.evaluate import evaluate
    from scriptrl.glassbox.prove.shield import ShieldSpec, interventions, shield_source
    from scriptrl.program import check_source

    body = shield_source(RECKLESS, ShieldSpec([Property("push left", PUSH_LEFT)], 0))
    assert check_source(body) == []  # the exported file still passes scriptrl's static checks
    seeds = list(range(1000, 1010))
    assert (
        prove(Program(body), CARTPOLE, [Property("push left", PUSH_LEFT)]).results[0].verdict == "UNKNOWN"
    )  # not modelled: deque
    shielded, plain = evaluate(Program(body), CARTPOLE, seeds), evaluate(Program(RECKLESS), CARTPOLE, seeds)
    assert shielded.mean > plain.mean and not shielded.failures
    n = interventions(body, RECKLESS, CARTPOLE, seeds)
    assert 0 < n["interventions"] < n["steps"]


def test_cli_export_with_a_shield_writes_a_monitored_policy_and_its_holdout_interventions(tmp_path):
    from scriptrl.evaluate import evaluate
    from scriptrl.store import RunStore

    run_dir = tmp_path / "run"
    with RunStore.create(run_dir, {"env_id": "CartPole-v1"}) as store:
        pid = store.add_program(
            RECKLESS, Program(RECKLESS).normalized_hash, [], "manual", "test", 0.0, None, 0
        )
        store.add_evaluation(
            pid, "holdout", "confirm", evaluate(Program(RECKLESS), CARTPOLE, list(range(1000, 1010)))
        )
    props = tmp_path / "shield.toml"
    props.write_text(f'fallback = 0\n[[property]]\nname = "push left"\nexpr = "{PUSH_LEFT}"\n')
    out = tmp_path / "shielded.py"
    p = cli("export", str(run_dir), "-o", str(out), "--program", str(pid), "--shield", str(props))
    assert p.returncode == 0, p.stdout + p.stderr
    text = out.read_text()
    card = next(line for line in text.splitlines() if line.startswith("# shield:"))
    assert "fallback action 0" in card and "holdout seeds 1000-1019" in card
    steps = int(card.split(" of ")[1].split()[0])
    assert 0 < int(card.split("intervened at ")[1].split()[0]) < steps
    p = cli("eval", str(out), "--env", "CartPole-v1", "--episodes", "5", "--json")
    assert p.returncode == 0, p.stderr
    p = cli(
        "export", str(run_dir), "-o", str(out), "--program", str(pid), "--shield", str(tmp_path / "none.toml")
    )
    assert p.returncode == 2 and "not found" in p.stderr


def test_a_discrete_observation_table_policy_is_refuted_at_the_state_that_breaks_it():
    source = (
        "TABLE = [1, 2, 1, 0, 3, 2, 1, 0, 0, 0, 1, 2, 0, 1, 1, 0]\n\n"
        "def policy(obs):\n    return TABLE[obs]\n"
    )
    lake = resolve_env("FrozenLake-v1")
    report = prove(
        Program(source),
        lake,
        [
            Property("next to the goal, go right", "obs != 14 or action == 2"),
            Property("valid", "action in (0, 1, 2, 3)"),
        ],
    )
    refuted, valid = report.results
    assert refuted.verdict == "REFUTED" and refuted.counterexample == 14 and refuted.action == 1
    assert valid.verdict == "PROVED" and refuted.box == [
        {"component": 0, "low": 0.0, "high": 15.0, "from": "space"}
    ]


@pytest.mark.skipif(not HOSTILE.is_dir(), reason="the shared hostile corpus is not beside this checkout")
def test_the_hostile_corpus_gets_a_prompt_unknown_and_never_runs():
    for path in sorted(HOSTILE.glob("h*.py")):
        started = time.monotonic()
        (r,) = prove(
            Program.from_file(path), CARTPOLE, [Property("valid", "action in (0, 1)")], max_seconds=10
        ).results
        assert r.verdict in ("UNKNOWN", "PROVED"), (path.name, r.detail)
        assert time.monotonic() - started < 30, path.name


@pytest.mark.slow
def test_the_driving_properties_of_the_case_study_refute_and_prove_on_the_example_program():
    """docs/driving.md: a user-written driving predicate is refuted with a replayed counterexample."""
    pytest.importorskip("highway_env")
    from checkout import EXAMPLES

    p = cli(
        "verify",
        str(EXAMPLES / "highway_linear_score.py"),
        "--env",
        "highway-fast-v0",
        "--properties",
        str(EXAMPLES / "highway_properties.toml"),
        "--no-robustness",
        "--json",
    )
    assert p.returncode == 1, p.stdout[-2000:] + p.stderr
    verdicts = {r["name"]: r for r in json.loads(p.stdout.strip().splitlines()[-1])["results"]}
    faster = verdicts["no FASTER with less than 15 m ahead"]
    assert faster["verdict"] == "REFUTED" and faster["action"] == 3
    assert faster["replays"] and all(r["violates"] for r in faster["replays"])  # the sandbox agreed
    obs = faster["counterexample"]
    assert obs[0] < 15 and 15 <= obs[6] <= 30  # inside the property's own ranges
    assert verdicts["no LANE_LEFT into a gap under 10 m"]["verdict"] == "PROVED"
