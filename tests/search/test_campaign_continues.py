"""A tuning campaign goes on across its own outputs even when they move a constant through zero.

Why: CMA-ES writes a negative weight as ``- 0.3 * x`` (a subtraction in a sum) or ``-0.3 * x``;
with signs, that changes the program's structure signature, and the search used to start a new
campaign (fresh step sizes, no covariance) on each such output, so an ES on a dense law never ran
long enough to adapt. Structure that differs in more than signs must still start a new campaign.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from scriptrl.search.population import structure_signature
from scriptrl.search.tuning_rounds import Tuning


def _law(expr: str) -> str:
    return f"def policy(obs):\n    x = obs[0]\n    a = {expr}\n    return [min(max(a, -1.0), 1.0)]\n"


BASE = _law("0.0 * x + 0.2 * x + 0.5")
FLIPPED = _law("-0.1 * x - 0.2 * x - 0.5")
OTHER = _law("0.1 * x - x + 0.5")
MORE = _law("0.1 * x + 0.2 * abs(x) + 0.5")


def test_the_unsigned_signature_forgets_signs_of_numbers_only():
    assert structure_signature(BASE) != structure_signature(FLIPPED)  # the niche keeps signs
    assert structure_signature(BASE, signed=False) == structure_signature(FLIPPED, signed=False)
    # ``- x`` subtracts a reading, not a number: another structure
    assert structure_signature(BASE, signed=False) != structure_signature(OTHER, signed=False)
    assert structure_signature(BASE, signed=False) != structure_signature(MORE, signed=False)


@pytest.mark.parametrize(
    ("target", "source", "continues"),
    [(7, "unused", True), (8, FLIPPED, True), (9, OTHER, False), (10, MORE, False)],
)
def test_a_campaign_continues_for_its_incumbent_and_sign_flipped_programs(target, source, continues):
    store = SimpleNamespace(program=lambda pid: {"source": source})
    tuning = Tuning.__new__(Tuning)
    tuning.search = SimpleNamespace(store=store)
    camp = SimpleNamespace(source=BASE, state=SimpleNamespace(incumbent=7))
    assert tuning._continues(camp, SimpleNamespace(id=target)) is continues
