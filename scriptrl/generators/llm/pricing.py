"""What a model call costs, from the token counts the API itself reported.

Prices live in a data file (``scriptrl/generators/prices.toml``) rather than in code because
they change more often than scriptrl does and every gateway charges its own; a user's file
(``SCRIPTRL_PRICES`` or ``prices = "FILE"`` in an LLM config file) overrides entries.
"""

from __future__ import annotations

import fnmatch
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from scriptrl.errors import UserError

BUILTIN = Path(__file__).resolve().parent.parent / "prices.toml"


@dataclass(frozen=True)
class Price:
    prompt: float  # USD per million prompt tokens
    completion: float  # USD per million completion tokens

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.prompt + completion_tokens * self.completion) / 1e6


FREE = Price(0.0, 0.0)


class PriceTable:
    def __init__(self, entries: dict[str, Price]) -> None:
        self.entries = {k.lower(): v for k, v in entries.items()}

    @classmethod
    def load(cls, extra: str | Path | None = None) -> PriceTable:
        entries = _read(BUILTIN)
        for path in (os.environ.get("SCRIPTRL_PRICES"), extra):
            if path:
                entries.update(_read(Path(path).expanduser()))
        return cls(entries)

    def lookup(self, model: str) -> Price | None:
        """The longest pattern matching ``model`` wins, so ``gpt-4o-mini*`` beats ``gpt-4o*``."""
        name = model.lower()
        if name in self.entries:
            return self.entries[name]
        matches = [k for k in self.entries if fnmatch.fnmatchcase(name, k)]
        return self.entries[max(matches, key=len)] if matches else None


def _read(path: Path) -> dict[str, Price]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise UserError(f"cannot read the price table {path}: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise UserError(f"{path}: not valid TOML ({e}); fix the price table") from None
    out = {}
    for name, row in (data.get("models") or {}).items():
        try:
            prompt, completion = float(row["prompt"]), float(row["completion"])
        except (KeyError, TypeError, ValueError):
            raise UserError(
                f'{path}: [models."{name}"] needs numeric `prompt` and `completion` '
                "(US dollars per million tokens)"
            ) from None
        if prompt < 0 or completion < 0:
            raise UserError(f'{path}: [models."{name}"] has a negative price')
        out[name] = Price(prompt, completion)
    return out
