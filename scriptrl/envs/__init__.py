"""Which environments scriptrl can run, and what their numbers mean.

``resolve_env`` turns a user's string into a picklable ``ResolvedEnv`` (mapping ids that
gymnasium retired to their replacements), and every resolved environment carries an
``EnvDescription``: curated from a reviewed data file for the built-in environments,
generated from the spaces for anything else, so prompts and docs never have to guess.
"""

from scriptrl.envs.description import ActionInfo, EnvDescription, ObsComponent, list_descriptions
from scriptrl.envs.generated import describe_spaces
from scriptrl.envs.registry import EnvError, ResolvedEnv, resolve_env
from scriptrl.envs.success_rule import SuccessRule, parse_success, with_success

__all__ = [
    "ActionInfo",
    "EnvDescription",
    "EnvError",
    "ObsComponent",
    "ResolvedEnv",
    "SuccessRule",
    "describe_spaces",
    "list_descriptions",
    "parse_success",
    "resolve_env",
    "with_success",
]
