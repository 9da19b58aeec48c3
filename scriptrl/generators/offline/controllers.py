"""Program families for vector observations that linear rules cannot express.

* nonlinear features: products, signed squares, ``abs`` and clipped differences of
  components (an energy term of a swing-up is a product of components);
* target-tracking (PD-style) controllers ``kp * (target - x) - kd * v`` over the
  position/velocity pairs the description names, otherwise over pairs of components;
* oblique decision trees of depth 2-3: ``if w . obs + b > 0:`` nesting, leaves are actions
  (discrete) or small clipped linear maps (Box).

Every constant is a plain literal, so CMA-ES tunes them and the generic operators
(perturb, add/remove term, flip, swap branches, replace condition, crossover) apply.
"""

from __future__ import annotations

import random

from scriptrl.generators.offline.env_view import EnvView, sig


def feature(env: EnvView, rng: random.Random) -> tuple[str, float]:
    """One nonlinear feature of the components and its typical size."""
    comps = env.layout.components
    n = len(comps)
    i, j = rng.randrange(n), rng.randrange(n)
    a, b = env.layout.ref(comps[i]), env.layout.ref(comps[j])
    sa, sb = comps[i].scale, comps[j].scale
    kind = rng.choice(("product", "product", "triple", "square", "abs", "clipped"))
    if kind == "product" and i != j:
        return f"({a} * {b})", sa * sb
    if kind == "triple":  # e.g. a rate times a rate squared: the kinetic part of an energy term
        k = rng.randrange(n)
        return f"({a} * {b} * {env.layout.ref(comps[k])})", sa * sb * comps[k].scale
    if kind == "square" or (kind == "product" and i == j):
        return f"({a} * abs({a}))", sa * sa
    if kind == "abs" or i == j:
        return f"abs({a})", sa
    ratio = sa / sb
    return f"min(max({a} - {sig(ratio)} * {b}, {sig(-sa)}), {sig(sa)})", sa


def nonlinear_sum(env: EnvView, rng: random.Random, t: float, gain: float, bias: float) -> str:
    """A linear part plus one to three weighted nonlinear features."""
    expr, _ = env.linear(env.pick(rng, t), gain, rng, bias if bias else None)
    for _ in range(rng.randint(1, 2 + int(t))):
        text, size = feature(env, rng)
        w = rng.gauss(0.0, 1.0) * gain / max(size, 1e-6)
        expr += f" + {sig(w)} * {text}"
    return expr


def nonlinear_box(env: EnvView, rng: random.Random, t: float) -> tuple[str, str]:
    def action(dim: int) -> str:
        gain = (0.5 + t) * env.action_scale(dim)
        return nonlinear_sum(env, rng, t, gain, env.action_centre(dim) + rng.gauss(0.0, 0.2) * gain)

    return env.clipped_box(action), "clipped map with nonlinear features (products, abs, clipped differences)"


def nonlinear_discrete(env: EnvView, rng: random.Random, t: float) -> tuple[str, str]:
    lay = env.layout
    lines = [f"{var} = {nonlinear_sum(env, rng, t, 0.5 + t, rng.gauss(0.0, 0.3))}" for var in lay.action_vars]
    lines.append("scores = [" + ", ".join(lay.action_vars) + "]")
    lines.append(f"return {list(lay.actions)!r}[scores.index(max(scores))]")
    return "\n".join(lines), f"argmax over {len(lay.actions)} scores with nonlinear features"


def tracking_pairs(env: EnvView, rng: random.Random) -> list[tuple[int, int]]:
    """Position/velocity pairs from the description, else random pairs of components."""
    pairs = list(env.layout.rate_pairs)
    n = len(env.layout.components)
    if not pairs and n >= 2:
        pairs = [(a, b) for a, b in (rng.sample(range(n), 2) for _ in range(min(3, n // 2)))]
    rng.shuffle(pairs)
    return pairs[: rng.randint(1, min(len(pairs), 3))] if pairs else []


def pd_term(env: EnvView, pair: tuple[int, int], rng: random.Random, gain: float) -> str:
    comps = env.layout.components
    x, v = comps[pair[0]], comps[pair[1]]
    target = (x.lo + x.hi) / 2.0 + rng.gauss(0.0, 0.2) * x.scale
    kp = abs(rng.gauss(1.0, 0.5)) * gain / x.scale
    kd = abs(rng.gauss(0.5, 0.3)) * gain / v.scale
    return f"{sig(kp)} * ({sig(target)} - {env.layout.ref(x)}) - {sig(kd)} * {env.layout.ref(v)}"


def pd_box(env: EnvView, rng: random.Random, t: float) -> tuple[str, str]:
    def action(dim: int) -> str:
        gain = (0.5 + t) * env.action_scale(dim)
        terms = [pd_term(env, p, rng, gain) for p in tracking_pairs(env, rng)] or ["0.0"]
        sign = rng.choice((1, -1))  # which way the actuator pushes is not known in advance
        expr = " + ".join(terms) if sign > 0 else "-(" + " + ".join(terms) + ")"
        return f"{expr} + {sig(env.action_centre(dim))}"

    return env.clipped_box(action), "target-tracking (PD-style) controller, clipped"


def pd_discrete(env: EnvView, rng: random.Random, t: float) -> tuple[str, str]:
    """A PD signal ``u`` picks one of two (or three) actions."""
    lay = env.layout
    terms = [pd_term(env, p, rng, 1.0) for p in tracking_pairs(env, rng)] or ["0.0"]
    lines = ["u = " + " + ".join(terms)]
    pos, neg = rng.sample(list(lay.actions), 2)
    if len(lay.actions) >= 3 and rng.random() < 0.5:
        mid = rng.choice([a for a in lay.actions if a not in (pos, neg)])
        band = sig(abs(rng.gauss(0.2, 0.1)))
        lines.append(f"if u > {band}:\n    return {pos}\nif u < -{band}:\n    return {neg}\nreturn {mid}")
    else:
        lines.append(f"return {pos} if u > 0.0 else {neg}")
    return "\n".join(lines), "target-tracking (PD-style) signal choosing actions"


def oblique_test(env: EnvView, rng: random.Random, t: float) -> str:
    n = len(env.layout.components)
    k = rng.randint(1, min(n, 3))
    expr, _ = env.linear(sorted(rng.sample(range(n), k)), 1.0, rng, rng.gauss(0.0, 0.3))
    return f"{expr} > 0"


def _box_leaf(env: EnvView, rng: random.Random, t: float) -> list[str]:
    out = []
    for dim, var in enumerate(env.layout.action_vars):
        half, centre = env.action_scale(dim), env.action_centre(dim)
        r = rng.random()
        if r < 0.35:
            out.append(f"{var} = {sig(env.action_const(dim, rng))}")
        elif r < 0.6 and len(env.layout.components) <= 12:
            out.append(f"{var} = {nonlinear_sum(env, rng, t, (0.5 + t) * half, centre)}")
        else:
            n = len(env.layout.components)
            picks = sorted(rng.sample(range(n), rng.randint(1, min(n, 2))))
            out.append(f"{var} = {env.linear(picks, (0.5 + t) * half, rng, centre if centre else None)[0]}")
    return out


def _tree(env: EnvView, rng: random.Random, t: float, depth: int) -> list[str]:
    lay = env.layout
    if depth == 0:
        if lay.action_kind == "discrete":
            return [f"return {rng.choice(lay.actions)}"]
        return _box_leaf(env, rng, t)
    inner_yes, inner_no = _tree(env, rng, t, depth - 1), _tree(env, rng, t, depth - 1)
    return (
        [f"if {oblique_test(env, rng, t)}:"]
        + ["    " + x for x in inner_yes]
        + ["else:"]
        + ["    " + x for x in inner_no]
    )


def oblique_tree(env: EnvView, rng: random.Random, t: float) -> tuple[str, str]:
    lay = env.layout
    box = lay.action_kind == "box"
    # Leaves of a Box tree are maps per action dimension: keep big action vectors shallow.
    depth = 2 if box and len(lay.action_vars) > 2 else rng.choice((2, 2, 3))
    lines = _tree(env, rng, t, depth)
    if box:
        lines.append(f"return {env.box_return([env.clip(d, v) for d, v in enumerate(lay.action_vars)])}")
    return "\n".join(lines), f"oblique decision tree of depth {depth}"
