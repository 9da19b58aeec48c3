"""The program contract as a person meets it: ordinary Python loads, state is explicit,
failures and splits are honest, and a seed's return does not depend on its neighbours.

Each policy below uses one construct (a dataclass, ``from __future__ import annotations``,
private attributes, ``super()``, inheritance, a helper class) to compute the same actions as
``PLAIN``; it must load in the real sandbox and score exactly what ``PLAIN`` scores.
"""

import json
import re
import sys

import pytest

from scriptrl.evaluate import EvalConfig, evaluate
from scriptrl.program import Program, ProgramError, check_source
from scriptrl.seeds import SeedSplits

from checkout import ROOT

SEEDS = [0, 1, 2]

PLAIN = "def policy(obs):\n    return 1 if 1.0 * obs[2] + 0.5 * obs[3] > 0 else 0\n"

DATACLASS = """\
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Gains:
    k: float = 1.0
    d: float = 0.5


GAINS = Gains()


def policy(obs):
    return 1 if GAINS.k * obs[2] + GAINS.d * obs[3] > 0 else 0
"""

DATACLASS_NO_FUTURE = DATACLASS.replace("from __future__ import annotations\n\n", "")

PRIVATE = """\
_K = 1.0


def _score(obs, k=_K):
    return k * obs[2] + 0.5 * obs[3]


class Policy:
    def __init__(self):
        self._config = {"d": 0.5}
        self.__steps = 0

    def reset(self, seed):
        self.__steps = 0

    def act(self, obs):
        self.__steps += 1
        return 1 if _score(obs) + 0 * self._config["d"] > 0 else 0
"""

INHERITED = """\
class Controller:
    def __init__(self, k):
        self._k = k

    def reset(self):
        self.t = 0

    def act(self, obs):
        self.t += 1
        return 1 if self._k * obs[2] + 0.5 * obs[3] > 0 else 0


class Policy(Controller):
    def __init__(self):
        super().__init__(k=1.0)
"""

HELPER_CLASS = """\
class Gains:
    def __init__(self, k, d):
        self.k, self.d = k, d

    def __call__(self, obs):
        return self.k * obs[2] + self.d * obs[3]


class Policy:
    def reset(self, seed):
        self._gains = Gains(1.0, 0.5)

    def act(self, obs):
        return 1 if self._gains(obs) > 0 else 0
"""

#: A per-episode step counter kept in a module-level object: it "works" for one episode and
#: breaks when episodes run interleaved (the issue's planner scored -200 instead of -107.64).
MODULE_STATE = """\
class Counter:
    def __init__(self):
        self.t = 0

    def tick(self):
        self.t += 1
        return self.t


CLOCK = Counter()
TABLE = (0, 1)  # a constant table, only read: fine


def policy(obs):
    t = CLOCK.tick()
    return TABLE[1] if t % 2 else TABLE[0]
"""

#: The same policy written the supported way.
CLASS_FORM = """\
class Policy:
    def reset(self, seed):
        self.t = 0

    def act(self, obs):
        self.t += 1
        return 1 if self.t % 2 else 0
"""


def _returns(source: str, config: EvalConfig | None = None, seeds: list[int] = SEEDS) -> list[float]:
    r = evaluate(source, "CartPole-v1", seeds, config)
    assert not r.failures, r.failures
    return r.returns


# --- 1. dataclasses and future annotations load ----------------------------------------------
@pytest.mark.parametrize("source", [DATACLASS, DATACLASS_NO_FUTURE], ids=["future-annotations", "plain"])
@pytest.mark.parametrize("in_process", [False, True], ids=["sandbox", "in-process"])
def test_dataclass_programs_load_and_score_like_the_plain_program(source, in_process):
    assert check_source(source) == []
    assert _returns(source, EvalConfig(unsafe_in_process=in_process)) == _returns(PLAIN)


def test_the_tracer_loads_a_dataclass_program_with_future_annotations():
    from scriptrl.glassbox.trace import explain

    ex = explain(DATACLASS, "CartPole-v1", seed=0, episodes=1)
    assert ex.decisions > 0
    assert all(ep.get("end") != "failure" for ep in ex.episodes), ex.episodes


def test_future_annotations_are_the_programs_own_choice():
    """Without the import, annotations stay evaluated: the worker's own __future__ flags do not leak in."""
    source = (
        "from dataclasses import dataclass, fields\n\n"
        "@dataclass\nclass G:\n    k: float = 1.0\n\n"
        "KIND = fields(G)[0].type\n\n"
        "def policy(obs):\n    return 1 if isinstance(KIND, type) else 0\n"
    )
    r = evaluate(source, "CartPole-v1", [0])
    assert not r.failures and r.episodes[0].action_summary["histogram"][1] == r.lengths[0]


# --- 2. ordinary Python passes the static checks; internals do not ---------------------------
@pytest.mark.parametrize(
    "source", [PRIVATE, INHERITED, HELPER_CLASS], ids=["private", "inherited", "helper-class"]
)
def test_ordinary_python_is_accepted_and_scores_like_the_plain_program(source):
    assert check_source(source) == []
    assert Program(source).entry_kind == "class"
    assert _returns(source) == _returns(PLAIN)


@pytest.mark.parametrize(
    "expr, fragment",
    [
        ("obs.__class__", "'.__class__'"),
        ("().__class__.__bases__[0].__subclasses__()", "'.__subclasses__'"),
        ("policy.__globals__", "'.__globals__'"),
        ("policy.__code__", "'.__code__'"),
        ("(x for x in obs).gi_frame.f_back", "'.gi_frame'"),
        ("__builtins__", "'__builtins__'"),
        ("statistics._sys", "private parts of an imported module"),
        ("statistics.sys", "'.sys'"),
    ],
)
def test_interpreter_internals_stay_refused(expr, fragment):
    problems = check_source(f"import statistics\n\ndef policy(obs):\n    return {expr}\n")
    assert any(fragment in p and "line 4" in p for p in problems), problems


def test_every_static_problem_is_reported_at_once_each_with_its_line(tmp_path, cli):
    source = "import os\n\ndef policy(obs):\n    x = obs.__class__\n    return eval('0')\n"
    problems = check_source(source)
    assert len(problems) == 3
    assert [re.search(r"line (\d+)", p).group(1) for p in problems] == ["1", "4", "5"]
    with pytest.raises(ProgramError) as e:
        Program(source).validate()
    assert str(e.value).splitlines() == problems
    f = tmp_path / "three.py"
    f.write_text(source)
    p = cli("eval", str(f), "--env", "CartPole-v1", "--episodes", "1")
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert len(p.stderr.strip().splitlines()) == 3


def test_policy_class_lacking_act_everywhere_is_still_refused():
    source = "class Base:\n    def reset(self):\n        pass\n\nclass Policy(Base):\n    pass\n"
    assert any("lacks act()" in p for p in check_source(source))


# --- 3. module-level state is explicit ----------------------------------------------------------
def test_module_state_is_refused_with_its_line_and_the_class_policy_form():
    problems = check_source(MODULE_STATE)
    assert len(problems) == 1, problems
    assert "line 15" in problems[0] and "CLOCK" in problems[0]
    assert (
        "class Policy:" in problems[0]
        and "def reset(self" in problems[0]
        and "def act(self, obs)" in problems[0]
    )
    assert check_source(CLASS_FORM) == []


@pytest.mark.parametrize(
    "body, name",
    [
        ("STATE = {'t': 0}\n\ndef policy(obs):\n    STATE['t'] += 1\n    return 0\n", "STATE"),
        ("HIST = []\n\ndef policy(obs):\n    HIST.append(obs)\n    return 0\n", "HIST"),
        ("T = 0\n\ndef policy(obs):\n    global T\n    T = T + 1\n    return 0\n", "global T"),
        ("def policy(obs, memory=[]):\n    memory.append(obs)\n    return 0\n", "memory"),
        ("def policy(obs):\n    policy.calls = 1\n    return 0\n", "policy"),
        (
            "class Policy:\n    seen = []\n    def reset(self, seed):\n        pass\n"
            "    def act(self, obs):\n        self.seen.append(obs)\n        return 0\n",
            "seen",
        ),
    ],
)
def test_each_common_form_of_module_state_is_found(body, name):
    problems = check_source(body)
    assert len(problems) == 1 and name in problems[0] and "class Policy" in problems[0], problems
    assert check_source(body, allow_module_state=True) == []


def test_a_module_level_object_counts_only_through_methods_that_change_it():
    klass = (
        "class Filter:\n    def __init__(self):\n        self.x = 0.0\n"
        "    def gain(self):\n        return 1.0\n"
        "    def _store(self, v):\n        self.x = v\n"
        "    def step(self, v):\n        self._store(v)\n        return self.x\n"
        "    def __call__(self, v):\n        return self.step(v)\n\n"
        "F = Filter()\n\n"
    )
    assert check_source(klass + "def policy(obs):\n    return 1 if F.gain() * obs[2] > 0 else 0\n") == []
    for use in ("F.step(obs[2])", "F(obs[2])"):
        problems = check_source(klass + f"def policy(obs):\n    return 1 if {use} > 0 else 0\n")
        assert len(problems) == 1 and "line 17" in problems[0] and "Filter" in problems[0], problems


def test_tables_built_at_import_and_only_read_are_not_state():
    source = (
        "import numpy as np\n\nTABLE = []\nGAINS = {'k': 1.0}\nW = np.zeros(4)\n\n"
        "def _build():\n    for i in range(3):\n        TABLE.append(i)\n\n_build()\nW[0] = 1.0\n\n"
        "def policy(obs):\n    local = []\n    local.append(GAINS['k'] * obs[2] + W[0] * 0.5 * obs[3])\n"
        "    return 1 if local[0] > 0 else 0\n"
    )
    assert check_source(source) == []
    assert _returns(source) == _returns(PLAIN)


def test_eval_refuses_module_state_and_runs_it_with_a_warning_when_allowed(tmp_path, cli):
    f = tmp_path / "stateful.py"
    f.write_text(MODULE_STATE)
    p = cli("eval", str(f), "--env", "CartPole-v1", "--split", "dev", "--episodes", "4", "--json")
    assert p.returncode == 2 and "Traceback" not in p.stderr and "class Policy" in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1
    p = cli(
        "eval",
        str(f),
        "--env",
        "CartPole-v1",
        "--split",
        "dev",
        "--episodes",
        "4",
        "--json",
        "--allow-module-state",
    )
    assert p.returncode == 0, p.stderr
    assert "warning" in p.stderr and "CLOCK" in p.stderr
    allowed = json.loads(p.stdout.strip().splitlines()[-1])
    right = evaluate(CLASS_FORM, "CartPole-v1", SeedSplits().seeds("dev", 4))
    # what the warning is about: interleaved episodes share the counter, so the scores differ
    assert allowed["returns"] != right.returns


def test_train_refuses_an_init_program_with_module_state(tmp_path, cli):
    f = tmp_path / "stateful.py"
    f.write_text(MODULE_STATE)
    p = cli(
        "train", "CartPole-v1", "--init", str(f), "--max-iterations", "1", "--run-dir", str(tmp_path / "run")
    )
    assert (
        p.returncode == 2
        and "Traceback" not in p.stderr
        and "CLOCK" in p.stderr
        and "class Policy" in p.stderr
    )
    assert not (tmp_path / "run").exists()


def test_reset_may_take_the_seed_or_not():
    with_seed = CLASS_FORM
    without = CLASS_FORM.replace("def reset(self, seed):", "def reset(self):")
    assert _returns(without) == _returns(with_seed)


def _readme_policy_examples() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Writing a policy", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, re.S)


def test_readme_documents_both_forms_and_its_examples_run():
    examples = _readme_policy_examples()
    kinds = sorted(Program(src).entry_kind for src in examples)
    assert kinds == ["class", "function"]
    for src in examples:
        assert check_source(src) == []
        assert evaluate(src, "CartPole-v1", SEEDS).failures == []


# --- 4. a program that failed every episode is not a score --------------------------------------
def test_eval_of_a_program_failing_every_episode_exits_1_and_says_failed(tmp_path, cli):
    f = tmp_path / "raises.py"
    f.write_text("def policy(obs):\n    raise ValueError('broken')\n")
    p = cli("eval", str(f), "--env", "CartPole-v1", "--split", "dev", "--episodes", "2", "--json")
    assert p.returncode == 1, p.stderr
    assert json.loads(p.stdout.strip().splitlines()[-1])["failed"] is True
    p = cli("eval", str(f), "--env", "CartPole-v1", "--split", "dev", "--episodes", "2")
    assert p.returncode == 1
    assert len([line for line in p.stdout.splitlines() if line.startswith("FAILED")]) == 1
    good = tmp_path / "good.py"
    good.write_text(PLAIN)
    p = cli("eval", str(good), "--env", "CartPole-v1", "--split", "dev", "--episodes", "2", "--json")
    assert p.returncode == 0 and json.loads(p.stdout.strip().splitlines()[-1])["failed"] is False


# --- 5. --episodes never leaves its split ------------------------------------------------------
def test_eval_episodes_beyond_the_split_is_a_one_line_error(tmp_path, cli):
    good = tmp_path / "good.py"
    good.write_text(PLAIN)
    p = cli("eval", str(good), "--env", "CartPole-v1", "--split", "dev", "--episodes", "1001")
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1 and "--episodes" in p.stderr


# --- 6. a seed's return does not depend on the episodes beside it -------------------------------
FALL_FAST = "def policy(obs):\n    return [-1.0, 1.0, -1.0, 1.0]\n"  # BipedalWalker falls in ~60 steps


def test_bipedalwalker_return_of_a_seed_is_the_same_when_environments_would_be_reused():
    seeds = SeedSplits().train(0, 6)
    alone = [evaluate(FALL_FAST, "BipedalWalker-v3", [s]).returns[0] for s in seeds[-2:]]
    shared = evaluate(FALL_FAST, "BipedalWalker-v3", seeds, EvalConfig(max_concurrency=2))
    assert not shared.failures
    assert shared.returns[-2:] == alone


@pytest.mark.slow
def test_bipedalwalker_return_of_a_seed_is_the_same_after_more_than_64_episodes():
    seeds = SeedSplits().train(0, 140)  # the last ones would run on an environment used twice before
    together = evaluate(FALL_FAST, "BipedalWalker-v3", seeds)
    apart = evaluate(FALL_FAST, "BipedalWalker-v3", seeds[-10:])  # ten episodes: ten fresh environments
    assert not together.failures and not apart.failures
    assert together.returns[-10:] == apart.returns


def test_in_process_loading_leaves_this_interpreters_modules_as_they_were():
    before = dict(sys.modules)
    assert _returns(DATACLASS, EvalConfig(unsafe_in_process=True)) == _returns(PLAIN)
    assert {k for k in sys.modules.keys() - before.keys() if k in ("policy", "scriptrl_program")} == set()
