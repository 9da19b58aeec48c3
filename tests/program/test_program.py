"""Static validation gives precise, actionable messages; it is a filter, not the boundary."""

import pytest

from scriptrl.program import Program, ProgramError, check_source


def test_valid_function_and_class_programs():
    assert check_source("import math\ndef policy(obs):\n    return 1 if math.sin(obs[0]) > 0 else 0\n") == []
    src = (
        "class Policy:\n    def reset(self, seed):\n        self.t = 0\n"
        "    def act(self, obs):\n        self.t += 1\n        return 0\n"
    )
    assert check_source(src) == []
    assert Program(src).entry_kind == "class"


def test_syntax_error_names_the_line():
    problems = check_source("def policy(obs):\n    return (1\n")
    assert len(problems) == 1 and "syntax error at line 2" in problems[0]


@pytest.mark.parametrize(
    "source, fragment",
    [
        ("def act(obs):\n    return 0\n", "no entry point"),
        ("import os\ndef policy(obs):\n    return 0\n", "import of 'os' is not allowed"),
        ("from subprocess import run\ndef policy(obs):\n    return 0\n", "import of 'subprocess'"),
        ("def policy(obs):\n    return obs.__class__\n", "attribute '.__class__'"),
        ("def policy(obs):\n    return eval('0')\n", "'eval' is not allowed"),
        ("def policy(obs):\n    return getattr(obs, 'x')\n", "'getattr' is not allowed"),
        ("def policy(obs):\n    return __builtins__\n", "'__builtins__' is not allowed"),
        ("class Policy:\n    def act(self, obs):\n        return 0\n", "lacks reset()"),
        ("from . import x\ndef policy(obs):\n    return 0\n", "relative import"),
        (
            "import statistics\ndef policy(obs):\n    return statistics.sys.modules['os'].getpid()\n",
            "reaches the interpreter",
        ),
        ("import numpy as np\ndef policy(obs):\n    return int(np.load('x')[0])\n", "'.load'"),
    ],
)
def test_forbidden_constructs_are_named_with_their_line(source, fragment):
    problems = check_source(source)
    assert problems and fragment in problems[0]
    assert "line" in problems[0] or "entry point" in problems[0] or "lacks" in problems[0]
    with pytest.raises(ProgramError):
        Program(source).validate()


def test_normalized_hash_ignores_comments_docstrings_and_formatting():
    a = Program('def policy(obs):\n    """Doc."""\n    return 1 if obs[2] > 0 else 0  # note\n')
    b = Program("def policy( obs ):\n    return (1 if obs[2] > 0 else 0)\n")
    c = Program("def policy(obs):\n    return 1 if obs[2] > 0.1 else 0\n")
    assert a.normalized_hash == b.normalized_hash
    assert a.normalized_hash != c.normalized_hash
    assert a.sha256 != b.sha256


def test_missing_file_is_a_user_error(tmp_path):
    from scriptrl.errors import UserError

    with pytest.raises(UserError, match="not found"):
        Program.from_file(tmp_path / "nope.py")


def test_check_source_verdict_is_remembered_per_arguments_and_never_shared():
    """The verdict is cached per process; the cache must key on every argument and hand out copies."""
    stateful = "counter = []\n\ndef policy(obs):\n    counter.append(1)\n    return 0\n"
    allowed = check_source(stateful, allow_module_state=True)
    strict = check_source(stateful)
    assert allowed == [] and strict and "counter" in strict[0]
    assert check_source(stateful, allow_module_state=True) == []  # the strict verdict did not leak
    strict.append("caller's own edit")
    assert check_source(stateful) == strict[:-1]
    renamed = check_source(stateful, name="other.py")
    assert renamed and all(p.startswith("other.py") for p in renamed)
    broken = "def policy(obs):\n    return (\n"
    assert check_source(broken) == check_source(broken) and "syntax error" in check_source(broken)[0]


def test_module_state_verdict_shared_across_number_changes_stays_exact():
    """Tuned siblings (numbers changed) share a stateless verdict; stateful ones keep their own messages."""
    clean = "def policy(obs):\n    return 1 if obs[2] + {k} * obs[3] > 0 else 0\n"
    for k in ("0.5", "0.75", "-1e-3"):
        assert check_source(clean.format(k=k)) == []
    stateful = "memory = [0, 0]\n\ndef policy(obs):\n    memory[{k}] = obs[0]\n    return 0\n"
    first, second = check_source(stateful.format(k=0)), check_source(stateful.format(k=1))
    assert first and second
    assert "memory[0]" in first[0] and "memory[1]" in second[0]
    # a layout once found clean does not excuse a program whose names differ
    assert check_source(
        "hist = []\n\ndef policy(obs):\n    hist.append(0.5)\n    return 1 if obs[2] > 0 else 0\n"
    )
