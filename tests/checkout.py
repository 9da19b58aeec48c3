"""Where the tests find the checkout's files, whichever package folder a test file sits in.

Importable as ``checkout`` because pyproject's pytest ``pythonpath`` puts ``tests/`` on
``sys.path`` (the same way ``custom_env_fixture`` is importable for ``module:Class`` env ids).
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"
DATA = TESTS / "data"
#: Planted faults and their correct counterpart (verify, diff, render).
VERIFY_FAULTS = DATA / "verify_faults"
#: The extra attacks of this repository (contract: ../shared/hostile/README).
HOSTILE_EXTRA = TESTS / "hostile_extra"
EXAMPLES = ROOT / "examples"
#: Planted policies that fail some episodes (explain's and the report's failed-episode sections).
CRASHES = DATA / "crashes"
#: The shared hostile corpus beside the checkout (``../shared/hostile``); absent in some clones.
SHARED_HOSTILE = ROOT.parent / "shared" / "hostile"
