"""A small oblique decision tree (weighted CART), fitted with numpy, for imitating a teacher.

Why oblique: a swing-up or a landing is decided by a *combination* of observations (push in
the direction the links are already moving; fire when falling faster than the height allows),
which an axis-aligned tree can only staircase with many nodes. Each split here is
``w . obs <= t`` over a few observations (``max_terms``), so one line of the rendered program
still reads as a rule. Candidate directions per node: every single observation (an ordinary
CART split) and, per action, the Fisher discriminant of "this action vs the rest", cut down to
its ``max_terms`` largest coefficients and refitted on them. An oblique split is kept only if
it beats the best single-observation split by ``oblique_margin`` of the node's impurity, so
the tree stays axis-aligned wherever that is nearly as good.

Sample weights carry VIPER's importance (how much the choice matters in a state); the
impurity is weighted Gini. Sibling leaves that give the same action are merged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Node:
    """A leaf (``weights is None``: answer ``action``) or a split (``weights . obs <= threshold``
    goes left)."""

    action: int
    weights: np.ndarray | None = None  # in raw observation units, largest |coefficient| = 1
    threshold: float = 0.0
    left: Node | None = None
    right: Node | None = None
    spread: float = 1.0  # std of ``weights . obs`` over the node's samples (a step size for tuning)

    @property
    def is_leaf(self) -> bool:
        return self.weights is None

    def internal(self) -> list[Node]:
        """Split nodes, parent before children (the order parameters and rendered lines follow)."""
        if self.is_leaf:
            return []
        assert self.left is not None and self.right is not None
        return [self, *self.left.internal(), *self.right.internal()]

    def leaves(self) -> int:
        if self.is_leaf:
            return 1
        assert self.left is not None and self.right is not None
        return self.left.leaves() + self.right.leaves()

    def depth(self) -> int:
        if self.is_leaf:
            return 0
        assert self.left is not None and self.right is not None
        return 1 + max(self.left.depth(), self.right.depth())

    def predict(self, obs: np.ndarray) -> np.ndarray:
        """Actions for a batch of observations (rows)."""
        x = np.asarray(obs, dtype=np.float64).reshape(len(obs), -1)
        out = np.empty(len(x), dtype=np.int64)
        self._fill(x, np.arange(len(x)), out)
        return out

    def _fill(self, x: np.ndarray, idx: np.ndarray, out: np.ndarray) -> None:
        if self.is_leaf or len(idx) == 0:
            out[idx] = self.action
            return
        assert self.weights is not None and self.left is not None and self.right is not None
        go_left = x[idx] @ self.weights <= self.threshold
        self.left._fill(x, idx[go_left], out)
        self.right._fill(x, idx[~go_left], out)


@dataclass(frozen=True)
class TreeSettings:
    """How big a tree may grow; the defaults keep a rendered program within about 40 lines."""

    max_depth: int = 4
    min_leaf: float = 0.01  # a leaf holds at least this fraction of the total sample weight
    oblique: bool = True
    max_terms: int = 3  # observations in one oblique split
    oblique_margin: float = 0.02  # of the node's impurity: what an oblique split must gain over CART's
    ridge: float = 1e-3


#: Samples a node's split directions are searched on (its threshold then uses every sample).
SEARCH_CAP = 20_000


@dataclass
class _Split:
    gain: float
    direction: np.ndarray  # standardized units
    threshold: float  # standardized units
    spread: float = 1.0


def fit_tree(
    obs: np.ndarray, actions: np.ndarray, weights: np.ndarray | None, n_actions: int, settings: TreeSettings
) -> Node:
    """The tree imitating ``actions`` on ``obs`` (weighted), as raw-unit splits."""
    x = np.asarray(obs, dtype=np.float64).reshape(len(obs), -1)
    y = np.asarray(actions, dtype=np.int64)
    w = np.ones(len(x)) if weights is None else np.asarray(weights, dtype=np.float64)
    if len(x) == 0:
        raise ValueError("no samples to fit a tree to")
    w = w / w.sum()
    mu, sd = x.mean(axis=0), x.std(axis=0)
    live = sd > 1e-9  # constant observations never split
    sd = np.where(live, sd, 1.0)
    z = (x - mu) / sd
    onehot = np.eye(n_actions)[y] * w[:, None]
    root = _grow(z, y, onehot, np.arange(len(z)), 0, settings, live, n_actions)
    _to_raw(root, mu, sd)
    return merge_leaves(root)


def _grow(z, y, onehot, idx, depth, settings: TreeSettings, live, n_actions) -> Node:
    counts = onehot[idx].sum(axis=0)
    node = Node(action=int(np.argmax(counts)))
    total = counts.sum()
    if depth >= settings.max_depth or total <= 0 or counts.max() >= total * (1 - 1e-9):
        return node
    split = _best_split(z[idx], y[idx], onehot[idx], settings, live, n_actions)
    if split is None or split.gain <= 1e-12:
        return node
    proj = z[idx] @ split.direction
    left = proj <= split.threshold
    node.weights, node.threshold, node.spread = split.direction, split.threshold, split.spread
    node.left = _grow(z, y, onehot, idx[left], depth + 1, settings, live, n_actions)
    node.right = _grow(z, y, onehot, idx[~left], depth + 1, settings, live, n_actions)
    return node


def _best_split(z, y, onehot, settings: TreeSettings, live, n_actions) -> _Split | None:
    """The best split of one node; directions are chosen on at most ``SEARCH_CAP`` samples, the
    threshold of the chosen one on all of them."""
    if len(z) > SEARCH_CAP:
        pick = np.random.default_rng(len(z)).choice(len(z), SEARCH_CAP, replace=False)
        found = _best_split(z[pick], y[pick], onehot[pick], settings, live, n_actions)
        if found is None:
            return None
        direction = found.direction
        parent = _impurity(onehot)
        cand = _scan(z @ direction, onehot, settings.min_leaf, parent)
        return None if cand is None else _Split(cand[0], direction, cand[1], cand[2])
    min_w = settings.min_leaf
    parent = _impurity(onehot)
    best: _Split | None = None
    for i in np.flatnonzero(live):
        d = np.zeros(z.shape[1])
        d[i] = 1.0
        best = _better(best, _scan(z @ d, onehot, min_w, parent), d)
    if not settings.oblique or best is None:
        return best
    axis_gain = best.gain
    oblique: _Split | None = None
    for d in _oblique_directions(z, y, onehot, settings, live, n_actions):
        oblique = _better(oblique, _scan(z @ d, onehot, min_w, parent), d)
    if oblique is None:
        return best
    oblique = _refine(oblique, z, onehot, min_w, parent)
    return oblique if oblique.gain >= axis_gain + settings.oblique_margin * parent else best


def _impurity(onehot: np.ndarray) -> float:
    total = onehot.sum()
    return float(total * _gini(onehot.sum(axis=0, keepdims=True), np.array([total]))[0])


def _refine(split: _Split, z, onehot, min_w: float, parent: float) -> _Split:
    """Coordinate search on an oblique split's coefficients (OC1's idea): nudge one term at a
    time, keep what lowers the impurity. Fisher's direction assumes Gaussian classes; this does not."""
    best = split
    terms = np.flatnonzero(best.direction)
    for step in (0.5, 0.2, 0.05):
        for i in terms:
            for sign in (1.0, -1.0):
                d = best.direction.copy()
                d[i] += sign * step * max(abs(d[i]), 0.1)
                if not np.any(d):
                    continue
                d = d / np.abs(d).max()
                best = _better(best, _scan(z @ d, onehot, min_w, parent), d) or best
    return best


def _better(best: _Split | None, cand: tuple[float, float, float] | None, d: np.ndarray) -> _Split | None:
    if cand is None or (best is not None and cand[0] <= best.gain):
        return best
    return _Split(cand[0], d, cand[1], cand[2])


def _gini(counts: np.ndarray, totals: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        p = counts / totals[:, None]
    return np.where(totals > 0, 1.0 - np.nansum(p * p, axis=1), 0.0)


def _scan(
    proj: np.ndarray, onehot: np.ndarray, min_w: float, parent: float
) -> tuple[float, float, float] | None:
    """The best threshold on one projection: (impurity decrease, threshold, spread), or None."""
    order = np.argsort(proj, kind="stable")
    p = proj[order]
    left = np.cumsum(onehot[order], axis=0)[:-1]
    all_counts = onehot.sum(axis=0)
    right = all_counts - left
    wl, wr = left.sum(axis=1), right.sum(axis=1)
    ok = (p[1:] > p[:-1]) & (wl >= min_w) & (wr >= min_w)
    if not ok.any():
        return None
    imp = wl * _gini(left, wl) + wr * _gini(right, wr)
    imp = np.where(ok, imp, np.inf)
    k = int(np.argmin(imp))
    return float(parent - imp[k]), float(0.5 * (p[k] + p[k + 1])), float(np.std(proj) or 1.0)


def _oblique_directions(z, y, onehot, settings: TreeSettings, live, n_actions) -> list[np.ndarray]:
    """Per action present: the Fisher direction separating it from the rest, on its largest terms."""
    w = onehot.sum(axis=1)
    out = []
    feats = np.flatnonzero(live)
    for a in range(n_actions):
        mask = y == a
        wa, wb = w[mask].sum(), w[~mask].sum()
        if wa <= 0 or wb <= 0 or len(feats) < 2:
            continue
        full = _fisher(z, w, mask, feats, settings.ridge)
        if full is None:
            continue
        for k in sorted({2, settings.max_terms}):
            if k > len(feats) or k < 2:
                continue
            keep = feats[np.argsort(-np.abs(full[feats]))[:k]]
            d = _fisher(z, w, mask, keep, settings.ridge)
            if d is not None:
                out.append(d)
    return out


def _fisher(z, w, mask, feats, ridge) -> np.ndarray | None:
    """Weighted Fisher discriminant of ``mask`` vs the rest on the observations ``feats``."""
    sub = z[:, feats]
    ma = np.average(sub[mask], axis=0, weights=w[mask])
    mb = np.average(sub[~mask], axis=0, weights=w[~mask])
    centred = np.where(mask[:, None], sub - ma, sub - mb)
    cov = (centred * w[:, None]).T @ centred / w.sum() + ridge * np.eye(len(feats))
    try:
        v = np.linalg.solve(cov, ma - mb)
    except np.linalg.LinAlgError:
        return None
    if not np.all(np.isfinite(v)) or np.abs(v).max() == 0:
        return None
    d = np.zeros(z.shape[1])
    d[feats] = v / np.abs(v).max()
    return d


def _to_raw(node: Node, mu: np.ndarray, sd: np.ndarray) -> None:
    """Rewrite a standardized split as one over raw observations, largest |coefficient| = 1."""
    if node.is_leaf:
        return
    assert node.weights is not None and node.left is not None and node.right is not None
    raw = node.weights / sd
    t = node.threshold + float(raw @ mu)
    scale = float(np.abs(raw).max())
    node.weights, node.threshold, node.spread = raw / scale, t / scale, node.spread / scale
    _to_raw(node.left, mu, sd)
    _to_raw(node.right, mu, sd)


def merge_leaves(node: Node) -> Node:
    """Collapse every split whose two sides end in the same action (it cannot change one)."""
    if node.is_leaf:
        return node
    assert node.left is not None and node.right is not None
    node.left, node.right = merge_leaves(node.left), merge_leaves(node.right)
    if node.left.is_leaf and node.right.is_leaf and node.left.action == node.right.action:
        return Node(action=node.left.action)
    return node
