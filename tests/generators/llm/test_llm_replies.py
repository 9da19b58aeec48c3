"""Reply parsing on real replies recorded from scriptrl's local models.

Each file in tests/data/llm_replies/ is one exchange recorded by ``record.py`` there: the
messages scriptrl sent, the model's reply, its token counts and, when the reply was unusable,
the repair round. ``expected.json`` holds what the parser made of each reply when a person
last read them; these tests hold the parser to it and check the invariants every parse must
keep. No model runs here.
"""

from __future__ import annotations

import ast
import json

import pytest

from scriptrl.generators.llm.replies import interpret
from scriptrl.program import check_source

from checkout import DATA as TEST_DATA

DATA = TEST_DATA / "llm_replies"
RECORDED = sorted(p for p in DATA.glob("*.json") if p.name != "expected.json")
EXPECTED = json.loads((DATA / "expected.json").read_text())


def test_there_are_recordings_from_both_models():
    models = {json.loads(p.read_text())["model"] for p in RECORDED}
    assert {"qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"} <= models
    assert set(EXPECTED) == {p.name for p in RECORDED}


@pytest.mark.parametrize("path", RECORDED, ids=lambda p: p.stem)
def test_a_recorded_reply_parses_as_reviewed(path):
    d = json.loads(path.read_text())
    assert d["usage"]["prompt_tokens"] > 0 and d["reply"]  # recorded from a real server
    for key, text in (("reply", d["reply"]), ("repair", (d.get("repair") or {}).get("reply"))):
        if text is None:
            continue
        p = interpret(text, d.get("parent"))
        want = EXPECTED[path.name][key]
        assert {"ok": p.ok, "how": p.how, "problem": p.problem, "tidied": list(p.tidied)} == want
        if p.ok:  # a usable program is valid, parses, and defines the entry point
            assert check_source(p.source) == []
            names = {
                n.name for n in ast.parse(p.source).body if isinstance(n, ast.FunctionDef | ast.ClassDef)
            }
            assert names & {"policy", "Policy"}
        elif p.source is None:
            assert p.problem
        else:
            assert p.problem == check_source(p.source)[0]


def test_recordings_cover_junk_and_recovery():
    outcomes = [v for e in EXPECTED.values() for v in e.values()]
    assert any(o["ok"] for o in outcomes) and any(not o["ok"] for o in outcomes)
    assert any(o["tidied"] for o in outcomes)  # harness code was dropped from some real reply
    repaired = [e for e in EXPECTED.values() if "repair" in e and e["repair"]["ok"]]
    assert repaired  # a real repair round turned junk into a valid program
