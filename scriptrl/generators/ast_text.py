"""Positions in program text: AST (line, UTF-8 byte column) to string offsets, and span edits."""

from __future__ import annotations

import ast
import re


class SourceText:
    """Maps AST (line, UTF-8 byte column) positions to string offsets."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.lines = re.findall(r"[^\n]*\n|[^\n]+$", source)
        self.starts = []
        pos = 0
        for line in self.lines:
            self.starts.append(pos)
            pos += len(line)

    def offset(self, lineno: int, col: int) -> int:
        line = self.lines[lineno - 1]
        return self.starts[lineno - 1] + len(line.encode("utf-8")[:col].decode("utf-8", errors="ignore"))

    def span(self, node: ast.AST) -> tuple[int, int]:
        return (
            self.offset(node.lineno, node.col_offset),  # type: ignore[attr-defined]
            self.offset(node.end_lineno, node.end_col_offset),  # type: ignore[attr-defined]
        )

    def text(self, node: ast.AST) -> str:
        a, b = self.span(node)
        return self.source[a:b]


Edit = tuple[int, int, str]


def apply_edits(source: str, edits: list[Edit]) -> str:
    """Apply non-overlapping replacements (start, end, text); overlapping ones raise ValueError."""
    out = source
    last_start = len(source) + 1
    for start, end, text in sorted(edits, key=lambda e: (e[0], e[1]), reverse=True):
        if end > last_start:
            raise ValueError("overlapping edits")
        out = out[:start] + text + out[end:]
        last_start = start
    return out
