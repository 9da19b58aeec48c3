"""Turn what a user typed into something that can be built, anywhere, the same way.

Resolution happens once, in the main process, so every problem (typo, retired id,
missing module) becomes one readable ``EnvError`` before any work starts. The result,
``ResolvedEnv``, holds only plain data so it can be pickled to worker processes, which
rebuild environments from it with ``make()``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import importlib
import os
import re
import sys
import warnings
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import gymnasium
from gymnasium import error as gym_error
from gymnasium.envs.registration import find_highest_version, get_env_id, parse_env_id, registry
from gymnasium.wrappers import TimeLimit

from scriptrl.envs import options as env_options
from scriptrl.envs.description import EnvDescription, curated
from scriptrl.envs.generated import describe_spaces
from scriptrl.envs.probe import with_measured_ranges
from scriptrl.errors import UserError

_LIST_HINT = "run `scriptrl envs` to list known ones, or pass module:Class"


class EnvError(UserError):
    """An environment name, module or class that cannot be used as given."""


@dataclasses.dataclass(frozen=True)
class _Target:
    """One way to run a requested name: gymnasium id, make kwargs, curated description id."""

    id: str
    kwargs: tuple[tuple[str, Any], ...] = ()
    description_id: str | None = None


# Ids gymnasium 1.4 no longer registers, mapped to what replaced them. Candidates are
# tried in order and the first one registered wins: LunarLanderContinuous-v3 exists in
# 1.4, but falling back to LunarLander-v3 + continuous=True keeps the continuous lander
# working if a later release drops the separate id. Anything not listed here is still
# handled generically from gymnasium's DeprecatedEnv "Please use X instead" message.
_CONTINUOUS_LANDER = (
    _Target("LunarLanderContinuous-v3"),
    _Target("LunarLander-v3", (("continuous", True),), "LunarLanderContinuous-v3"),
)
_ALIASES: dict[str, tuple[_Target, ...]] = {
    "LunarLander-v2": (_Target("LunarLander-v3"),),
    "LunarLanderContinuous-v2": _CONTINUOUS_LANDER,
    "LunarLanderContinuous-v3": _CONTINUOUS_LANDER,
    "Taxi-v3": (_Target("Taxi-v4"),),
    "CliffWalking-v0": (_Target("CliffWalking-v1"),),
    "BipedalWalker-v2": (_Target("BipedalWalker-v3"),),
    "BipedalWalkerHardcore-v2": (_Target("BipedalWalkerHardcore-v3"),),
    "CarRacing-v2": (_Target("CarRacing-v3"),),
}
_SUGGESTED_ID = re.compile(r"Please use `([^`]+)` instead|default version `([^`]+)`")


def _label(env_id: str, kwargs: tuple[tuple[str, Any], ...]) -> str:
    if not kwargs:
        return env_id
    return f"{env_id} ({', '.join(f'{k}={v!r}' for k, v in kwargs)})"


@dataclasses.dataclass(frozen=True)
class ResolvedEnv:
    """A fully checked environment choice; plain data only, so it pickles to workers."""

    requested: str
    id: str
    kwargs: tuple[tuple[str, Any], ...]
    imports: tuple[str, ...]
    notice: str | None
    description: EnvDescription
    gymnasium_version: str

    @property
    def solved_threshold(self) -> float | None:
        return self.description.solved_threshold

    @property
    def max_return(self) -> float | None:
        return self.description.max_return

    @property
    def max_episode_steps(self) -> int | None:
        return self.description.time_limit

    @property
    def _is_custom_class(self) -> bool:
        """True for ``module:Class`` environments, which bypass gymnasium's registry."""
        return ":" in self.id

    def label(self) -> str:
        """Short name for results and logs, including any make kwargs that change behaviour."""
        return _label(self.id, self.kwargs)

    def make(self, **extra: Any) -> gymnasium.Env:
        """Build a fresh environment; safe to call in a worker that has never seen the registry entries."""
        if extra.get("render_mode", "") is None:
            # Not every custom class accepts render_mode; "no rendering" needs no argument.
            del extra["render_mode"]
        for module in self.imports:
            _import_module(module, f"imported for {self.requested!r}")
        wrappers, kwargs = env_options.split_wrappers({**dict(self.kwargs), **extra})
        try:
            with _quiet():
                if not self._is_custom_class:
                    env = gymnasium.make(self.id, disable_env_checker=True, **kwargs)
                else:
                    env = _load_class(self.id)(**kwargs)
                    if self.description.time_limit:
                        env = TimeLimit(env, max_episode_steps=self.description.time_limit)
                return _wrap(env, wrappers)
        except EnvError:
            raise
        except Exception as exc:
            raise EnvError(f"cannot create environment {self.label()!r}: {_one_line(exc)}") from exc


def _wrap(env: gymnasium.Env, wrappers: tuple[str, ...]) -> gymnasium.Env:
    """Apply the trusted observation adapters named by ``[make] wrapper``, innermost first."""
    for name in wrappers:
        env = _load_class(name)(env)
    return env


def resolve_env(
    name: str, imports: Sequence[str] = (), options: Mapping[str, Any] | None = None
) -> ResolvedEnv:
    """Check ``name`` now, in the main process, so mistakes surface as one line before any work starts.

    ``name`` is a gymnasium id (retired ids are mapped to their replacement with a
    notice), ``module:Class`` for an environment class, or ``module:Id`` for an id the
    module registers. ``imports`` are modules to import first, typically ones that
    register ids; they are imported again by ``make()`` in worker processes. ``options`` are
    make-time options (``scriptrl/envs/options.py``), merged over the description's own.
    """
    requested = name
    name = name.strip() if isinstance(name, str) else ""
    if not name:
        raise EnvError(f"empty environment name; pass a gymnasium id such as CartPole-v1, or {_LIST_HINT}")
    imports = tuple(m.strip() for m in imports if m and m.strip())
    known = curated().get(name)
    if known is not None:  # a third-party id whose description names the package registering it
        imports = (*imports, *(m for m in known.imports if m not in imports))
    with _quiet():
        for module in imports:
            _import_module(module, "given with --import")
        if ":" in name:
            module, _, attr = name.rpartition(":")
            if not module or not attr:
                raise EnvError(f"bad environment {name!r}: expected module:Class, e.g. mypkg.envs:MyEnv")
            _import_module(module, f"named in {name!r}")
            if hasattr(sys.modules[module], attr):
                return _resolve_class(requested, name, imports, dict(options or {}))
            # gymnasium's own "module:EnvId" form: importing the module registers the id.
            try:
                return _resolve_registered(requested, attr, (*imports, module), dict(options or {}))
            except EnvError as exc:
                if attr in registry:
                    raise  # a real id that failed to build: keep that message
                raise EnvError(
                    f"module {module!r} has no class or registered id {attr!r}; "
                    f"check the spelling in {name!r}"
                ) from exc
        return _resolve_registered(requested, name, imports, dict(options or {}))


def _resolve_registered(
    requested: str, name: str, imports: tuple[str, ...], options: dict[str, Any] | None = None
) -> ResolvedEnv:
    target, notice = _find_target(name)
    desc = curated().get(target.description_id or target.id)
    made = env_options.merge(dict(desc.make) if desc is not None else {}, options or {})
    kwargs = env_options.as_kwargs({**dict(target.kwargs), **made})
    if desc is None or options:
        # A generated description reads the spaces; options may change them (an observation
        # type), so a curated one is checked against the spaces the options give.
        spec = registry[target.id]
        wrappers, plain = env_options.split_wrappers(dict(kwargs))
        env = _construct(
            target.id,
            lambda: _wrap(gymnasium.make(target.id, disable_env_checker=True, **plain), wrappers),
        )
        try:
            generated = describe_spaces(
                target.id,
                env.observation_space,
                env.action_space,
                spec.max_episode_steps,
                spec.reward_threshold,
            )
        finally:
            _close(env)
        if desc is None or len(generated.observation) != len(desc.observation):
            desc = with_measured_ranges(
                generated, lambda: gymnasium.make(target.id, disable_env_checker=True, **dict(kwargs))
            )
    return ResolvedEnv(
        requested=requested,
        id=target.id,
        kwargs=kwargs,
        imports=imports,
        notice=notice,
        description=desc,
        gymnasium_version=gymnasium.__version__,
    )


def _resolve_class(
    requested: str, name: str, imports: tuple[str, ...], options: dict[str, Any] | None = None
) -> ResolvedEnv:
    cls = _load_class(name)
    wrappers, plain = env_options.split_wrappers(options or {})
    env = _construct(name, lambda: _wrap(cls(**plain), wrappers))
    try:
        for attr in ("observation_space", "action_space"):
            if not hasattr(env, attr):
                raise EnvError(f"{name!r} is not a gymnasium environment: it has no {attr}")
        spec = getattr(env, "spec", None)
        # A class outside the registry has no spec, so honour class-level hints instead.
        limit = getattr(spec, "max_episode_steps", None) or getattr(cls, "max_episode_steps", None)
        threshold = getattr(spec, "reward_threshold", None)
        if threshold is None:
            threshold = getattr(cls, "reward_threshold", None)
        desc = describe_spaces(name, env.observation_space, env.action_space, limit, threshold)
        desc = with_measured_ranges(desc, lambda: cls(**(options or {})))
        doc = (getattr(cls, "__doc__", None) or "").strip()
        if doc:
            # The author's own one-line docstring beats "described from its spaces only".
            desc = dataclasses.replace(desc, title=doc.splitlines()[0].strip())
    finally:
        _close(env)
    return ResolvedEnv(
        requested=requested,
        id=name,
        kwargs=env_options.as_kwargs(options or {}),
        imports=imports,
        notice=None,
        description=desc,
        gymnasium_version=gymnasium.__version__,
    )


def _find_target(name: str) -> tuple[_Target, str | None]:
    """Map a typed id to a registered one, explaining any substitution in a one-line notice."""
    if name in registry:
        return _Target(name), None
    retired = f"{name} was retired by gymnasium {_minor_version()}"
    for candidate in _ALIASES.get(name, ()):
        if candidate.id in registry:
            return candidate, f"{retired}; running {_label(candidate.id, candidate.kwargs)}"
    try:
        ns, base, version = parse_env_id(name)
    except gym_error.Error:
        raise EnvError(_unknown(name)) from None
    if version is None:
        latest = find_highest_version(ns, base)
        if latest is not None:
            target = get_env_id(ns, base, latest)
            return _Target(target), f"{name} has no version; running the latest, {target}"
    try:
        gymnasium.spec(name)
    except gym_error.DeprecatedEnv as exc:
        match = _SUGGESTED_ID.search(str(exc))
        suggested = match and (match.group(1) or match.group(2))
        if suggested and suggested in registry:
            return _Target(suggested), f"{retired}; running {suggested}"
        raise EnvError(_unknown(name)) from None
    except gym_error.Error:
        raise EnvError(_unknown(name)) from None
    raise EnvError(_unknown(name))  # pragma: no cover - spec() succeeded yet the id is not registered


def _minor_version() -> str:
    return ".".join(gymnasium.__version__.split(".")[:2])


def _unknown(name: str) -> str:
    ids = list(registry)
    by_lower = {i.lower(): i for i in ids}
    close = [by_lower[name.lower()]] if name.lower() in by_lower else []
    close += [m for m in difflib.get_close_matches(name, ids, n=3, cutoff=0.6) if m not in close]
    hint = f" (did you mean {' or '.join(repr(m) for m in close[:3])}?)" if close else ""
    return f"unknown environment {name!r}: not a gymnasium id{hint}; {_LIST_HINT}"


def _import_module(module: str, why: str) -> None:
    """Import ``module``, counting the working directory as importable even under a console script."""
    prefix = f"cannot import module {module!r} ({why})"
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as exc:
        ours = exc.name is not None and exc.name.split(".")[0] == module.split(".")[0]
        if not ours:  # the module exists but one of its own imports is missing
            raise EnvError(f"{prefix}: {_one_line(exc)}") from exc
        cwd = os.getcwd()
        fix = "check the name and that it is installed or on PYTHONPATH"
        if cwd in sys.path or "" in sys.path:
            raise EnvError(f"{prefix}: {_one_line(exc)}; {fix}") from exc
        # The `scriptrl` console script does not put the working directory on sys.path, yet
        # someone naming `myenv:MyEnv` next to their myenv.py rightly expects it to be found.
        sys.path.append(cwd)
        try:
            importlib.import_module(module)
        except ModuleNotFoundError:
            sys.path.remove(cwd)
            raise EnvError(f"{prefix}: {_one_line(exc)}; {fix}") from exc
        except Exception as inner:
            raise EnvError(f"{prefix}: {_one_line(inner)}") from inner
    except Exception as exc:
        raise EnvError(f"{prefix}: {_one_line(exc)}") from exc


def _load_class(name: str) -> Any:
    module, _, attr = name.rpartition(":")
    _import_module(module, f"named in {name!r}")
    obj = getattr(sys.modules[module], attr, None)
    if obj is None or not callable(obj):
        raise EnvError(f"{name!r} is not a class: module {module!r} has no callable {attr!r}")
    return obj


def _construct(label: str, factory: Any) -> Any:
    try:
        return factory()
    except EnvError:
        raise
    except Exception as exc:
        raise EnvError(f"cannot create environment {label!r}: {_one_line(exc)}") from exc


def _close(env: Any) -> None:
    with contextlib.suppress(Exception):
        env.close()


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    first = text.splitlines()[0].strip() if text else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence gymnasium's deprecation and "out of date" warnings: we report aliases ourselves."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield
