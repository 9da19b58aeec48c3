"""Reading and editing policy programs through their syntax tree: the old single entry point.

The code lives in modules named for their concept; this module re-exports them so that
``from scriptrl.generators import astutil as au`` keeps working while callers move:

* ``ast_tree``: parents, the entry point, one function's own nodes;
* ``ast_numbers``: numeric sites and their roles, number formatting, ``write_numbers``;
* ``ast_live``: which code can change an action (only its constants are tuned);
* ``ast_text``: text positions and span edits;
* ``ast_analysis``: ``Analysis`` (a parsed program with its components and sites), ``skeleton``;
* ``ast_render``: ``render``, a whole tree written afresh;
* ``ast_splice``: ``render_edit``, an edited tree written by splicing into the original text;
* ``ast_names``: the binding analysis and the child-program check ``problem``.
"""

from __future__ import annotations

from scriptrl.generators.ast_analysis import Analysis, map_sites, skeleton
from scriptrl.generators.ast_names import BUILTINS, names_bound, problem, undefined_names
from scriptrl.generators.ast_numbers import (
    Site,
    fmt_number,
    is_number,
    is_signed_number,
    num_node,
    number_edits,
    numeric_sites,
    round_sig,
    signed_value,
    write_numbers,
)
from scriptrl.generators.ast_render import is_docstring, render
from scriptrl.generators.ast_splice import render_edit
from scriptrl.generators.ast_text import Edit, SourceText, apply_edits
from scriptrl.generators.ast_tree import entry_function, parent_map, walk_function

_is_docstring = is_docstring  # offline.py's crossover still calls it by its old name

__all__ = [
    "BUILTINS",
    "Analysis",
    "Edit",
    "Site",
    "SourceText",
    "apply_edits",
    "entry_function",
    "fmt_number",
    "is_docstring",
    "is_number",
    "is_signed_number",
    "map_sites",
    "names_bound",
    "num_node",
    "number_edits",
    "numeric_sites",
    "parent_map",
    "problem",
    "render",
    "render_edit",
    "round_sig",
    "signed_value",
    "skeleton",
    "undefined_names",
    "walk_function",
    "write_numbers",
]
