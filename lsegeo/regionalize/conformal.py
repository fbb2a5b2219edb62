r"""Prediction intervals for the predicted score of a regionalized parameter set: split conformal.

The emulator predicts the score (e.g. KGE') that a target's regionalized parameter set will
reach; :class:`ScoreIntervals` turns that point prediction into an interval that holds the
actual score with a chosen probability (90% by default). It is split (inductive) conformal
regression (Papadopoulos et al. 2002; Vovk, Gammerman & Shafer 2005, ch. 4), computed by the
``crepes`` package (Boström 2022, :class:`crepes.ConformalRegressor`):

1. **Calibration.** Pairs of predicted and actual scores of targets the emulator did not see,
   e.g. the held-out basins of a spatial cross-validation (each basin predicted by the fold that
   held it out, its proposed set run on the real model). Their nonconformity scores are
   :math:`\alpha_i = |y_i - \hat y_i| / \sigma_i`, with :math:`\sigma_i = 1` for standard
   intervals.
2. **Threshold.** With :math:`n` calibration scores sorted in decreasing order and
   confidence :math:`1 - \epsilon`, :math:`\alpha^* = \alpha_{(k)}`, the :math:`k`-th largest with
   :math:`k = \lfloor \epsilon (n + 1) \rfloor` (crepes' rule). It needs :math:`k \ge 1`, i.e.
   :math:`n \ge 1/\epsilon - 1`; with fewer, :meth:`ScoreIntervals.fit` raises. In floating
   point :math:`1 - 0.9` is slightly below 0.1, so 90% needs 10 points
   (:func:`min_calibration_size`).
3. **Interval** of a new target: :math:`[\hat y - \alpha^* \sigma, \hat y + \alpha^* \sigma]`,
   clipped to ``[y_min, y_max]`` when given (KGE' is at most 1). If calibration and new targets are
   exchangeable, it holds the actual score with probability at least :math:`1 - \epsilon`
   (marginal validity; Vovk et al. 2005, Proposition 4.1; Lei et al. 2018, Theorem 2.2).

**Normalized intervals** (``normalized=True`` and a ``difficulty`` per target): the width follows
a difficulty estimate :math:`d` -- the spread of an emulator ensemble's predictions, or the
target's distance to the training basins in attribute space (its applicability value) -- through
:math:`\sigma = \beta + d / \tilde d`, where :math:`\tilde d` is the median difficulty of the
calibration targets (so :math:`\sigma` has no units and is 1 for a typical target) and
:math:`\beta` (``beta``, 0.01 by default as in crepes' ``DifficultyEstimator``) keeps
:math:`\sigma > 0` where :math:`d = 0`. This is the normalized nonconformity measure of
Papadopoulos, Gammerman & Vovk (2008) and Johansson et al. (2014): targets that look hard get
wider intervals, easy ones narrower, at the same overall coverage. Without a difficulty at
fitting the intervals are standard ones (:attr:`ScoreIntervals.is_normalized` says which).

**Groups** (Mondrian conformal prediction; Vovk et al. 2005, section 4.5; Boström & Johansson
2020): with ``groups`` (e.g. the HUC-02 region of each target), the threshold is computed in
every group from that group's calibration targets, so the coverage holds within each group, not
only on average. A group with too few calibration targets for the confidence (see step 2), or
one not seen at calibration, uses the pooled threshold of all targets; such groups are listed
in :attr:`ScoreIntervals.pooled_groups`.

Calibration pairs with a missing (NaN) actual or predicted score, or a non-finite difficulty,
are dropped and counted (:attr:`ScoreIntervals.n_dropped`). :meth:`ScoreIntervals.to_dict`
keeps everything needed to rebuild the intervals (the sorted nonconformity scores, groups,
difficulty scale) in JSON, to be stored in a product's attributes. :func:`coverage` measures the
share of actual scores inside intervals, overall and per group.

References: Papadopoulos, Proedrou, Vovk & Gammerman (2002), *Inductive confidence machines for
regression*, ECML; Papadopoulos, Gammerman & Vovk (2008), *Normalized nonconformity measures for
regression conformal prediction*, AIA; Vovk, Gammerman & Shafer (2005), *Algorithmic Learning in
a Random World*, Springer; Johansson, Boström, Löfström & Linusson (2014), *Regression conformal
prediction with random forests*, Mach. Learn. 97; Lei, G'Sell, Rinaldo, Tibshirani & Wasserman
(2018), *Distribution-free predictive inference for regression*, JASA 113; Boström & Johansson
(2020), *Mondrian conformal regressors*, PMLR 128; Boström (2022), *crepes: a Python package for
generating conformal regressors and predictive systems*, PMLR 179.
"""

from __future__ import annotations

import logging
import math
import warnings
from typing import Any

import numpy as np

from lsegeo.errors import MissingDependencyError

__all__ = ["ScoreIntervals", "coverage", "min_calibration_size"]

logger = logging.getLogger(__name__)

METHOD = "split conformal regression (crepes ConformalRegressor)"


def _crepes():
    try:
        import crepes
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise MissingDependencyError("score intervals need the crepes package: pip install crepes") from err
    return crepes


def min_calibration_size(confidence: float) -> int:
    r"""Fewest calibration points that give a finite interval at ``confidence``.

    crepes takes the :math:`k`-th largest nonconformity score with
    :math:`k = \lfloor (1 - c)(n + 1) \rfloor` and needs :math:`k \ge 1`, i.e.
    :math:`n \ge 1/(1 - c) - 1`; this is the least such :math:`n`, computed with crepes' own
    floating-point expression (10 for 0.9, where ``1 - 0.9`` is slightly below 0.1; 19 for 0.95).

    Parameters
    ----------
    confidence : float
        In (0, 1).

    Returns
    -------
    int
    """
    n = max(0, math.floor(1.0 / (1.0 - confidence)) - 2)
    while int((1 - confidence) * (n + 1)) < 1:
        n += 1
    return n


def _vector(x: Any, name: str, n: int | None = None) -> np.ndarray:
    v = np.asarray(x, dtype=np.float64).reshape(-1)
    if n is not None and len(v) != n:
        raise ValueError(f"{name} has {len(v)} values, expected {n} (one per target)")
    return v


def _labels(groups: Any, n: int) -> np.ndarray | None:
    if groups is None:
        return None
    g = np.asarray(groups).reshape(-1)
    if len(g) != n:
        raise ValueError(f"groups has {len(g)} values, expected {n} (one per target)")
    return np.array([str(v) for v in g.tolist()], dtype=object)


class ScoreIntervals:
    r"""Split-conformal intervals of predicted scores, optionally normalized and per group.

    The method is in the module's documentation.

    Parameters
    ----------
    confidence : float
        Probability that an interval holds the actual score (0.9).
    normalized : bool
        Scale the intervals by a per-target ``difficulty`` where one is given (True).
    beta : float
        :math:`\beta` of :math:`\sigma = \beta + d / \tilde d` (0.01).
    y_min, y_max : float, optional
        Clip the intervals to this range (e.g. ``y_max=1`` for KGE').

    Attributes
    ----------
    n_calibration : int
        Calibration pairs used.
    n_dropped : int
        Pairs dropped for a missing actual or predicted score or difficulty.
    is_normalized : bool
        Whether the fitted intervals use a difficulty.
    pooled_groups : list of str
        Groups whose intervals use the pooled threshold (too few calibration points).
    """

    def __init__(self, confidence: float = 0.9, normalized: bool = True, *, beta: float = 0.01,
                 y_min: float | None = None, y_max: float | None = None) -> None:
        if not 0.0 < float(confidence) < 1.0:
            raise ValueError(f"confidence must be in (0, 1), got {confidence}")
        if not float(beta) > 0.0:
            raise ValueError(f"beta must be positive, got {beta}")
        if y_min is not None and y_max is not None and not y_min < y_max:
            raise ValueError(f"y_min {y_min} must be below y_max {y_max}")
        self.confidence = float(confidence)
        self.normalized = bool(normalized)
        self.beta = float(beta)
        self.y_min = None if y_min is None else float(y_min)
        self.y_max = None if y_max is None else float(y_max)
        self.is_normalized = False
        self.difficulty_scale = 1.0
        self.n_calibration = 0
        self.n_dropped = 0
        self.pooled_groups: list[str] = []
        self._scores = np.zeros(0)
        self._groups: np.ndarray | None = None
        self._pooled: Any = None
        self._mondrian: Any = None
        self._group_n: dict[str, int] = {}

    # -- fitting ------------------------------------------------------------------------------
    def fit(self, predicted: Any, actual: Any, *, difficulty: Any = None, groups: Any = None) -> ScoreIntervals:
        """Calibrate on held-out predicted and actual scores.

        Parameters
        ----------
        predicted : array-like
            ``(n,)`` predicted scores of calibration targets (out of fold).
        actual : array-like
            ``(n,)`` their actual scores; NaN where unknown (dropped and counted).
        difficulty : array-like, optional
            ``(n,)`` non-negative difficulty estimates (normalized intervals; module notes).
        groups : array-like, optional
            ``(n,)`` group labels (Mondrian intervals), compared as strings.

        Returns
        -------
        ScoreIntervals
            ``self``.

        Raises
        ------
        ValueError
            Lengths differ, a difficulty is negative, or fewer calibration pairs remain than the
            confidence needs (``n < 1/(1 - confidence) - 1``); the message gives both numbers.
        """
        pred = _vector(predicted, "predicted")
        act = _vector(actual, "actual", len(pred))
        keep = np.isfinite(pred) & np.isfinite(act)
        d = None
        if difficulty is not None and self.normalized:
            d = _vector(difficulty, "difficulty", len(pred))
            if (d[np.isfinite(d)] < 0).any():
                raise ValueError("difficulty must be non-negative")
            keep &= np.isfinite(d)
        g = _labels(groups, len(pred))
        self.n_dropped = int((~keep).sum())
        if self.n_dropped:
            logger.info("conformal calibration: %d of %d pairs dropped (missing actual or predicted score%s)",
                        self.n_dropped, len(pred), " or difficulty" if d is not None else "")
        n, need = int(keep.sum()), min_calibration_size(self.confidence)
        if n < need:
            raise ValueError(f"{n} calibration pairs ({self.n_dropped} of {len(pred)} dropped as missing) are too few "
                             f"for confidence {self.confidence}: need n >= 1/(1 - confidence) - 1 = "
                             f"{1 / (1 - self.confidence) - 1!r} (floating point), i.e. at least {need}")
        self.is_normalized = d is not None
        sigma = np.ones(n)
        if d is not None:
            dk = d[keep]
            scale = float(np.median(dk))
            scale = scale if scale > 0 else float(dk.mean())
            self.difficulty_scale = scale if scale > 0 else 1.0
            sigma = self._sigma(dk)
        self._calibrate(np.abs(act[keep] - pred[keep]) / sigma, None if g is None else g[keep])
        return self

    def _sigma(self, d: np.ndarray) -> np.ndarray:
        return self.beta + d / self.difficulty_scale

    def _calibrate(self, scores: np.ndarray, groups: np.ndarray | None) -> None:
        """Fit crepes on nonconformity scores (as residuals with unit sigmas: crepes' alphas are the scores)."""
        crepes = _crepes()
        self._scores = np.asarray(scores, dtype=np.float64)
        self._groups = groups
        self.n_calibration = len(self._scores)
        ones = np.ones(len(self._scores))
        self._pooled = crepes.ConformalRegressor().fit(self._scores, sigmas=ones)
        self._mondrian, self._group_n, self.pooled_groups = None, {}, []
        if groups is not None:
            labels, counts = np.unique(groups, return_counts=True)
            self._group_n = {str(k): int(c) for k, c in zip(labels, counts, strict=True)}
            need = min_calibration_size(self.confidence)
            self.pooled_groups = [k for k, c in self._group_n.items() if c < need]
            self._mondrian = crepes.ConformalRegressor().fit(self._scores, sigmas=ones, bins=groups)

    # -- intervals ----------------------------------------------------------------------------
    def threshold(self, group: str | None = None) -> float:
        r""":math:`\alpha^*`: the half-width of the interval where :math:`\sigma = 1`.

        Parameters
        ----------
        group : str, optional
            The group's own threshold (the pooled one for a group in :attr:`pooled_groups` or
            not seen in calibration); default the pooled threshold.
        """
        self._check()
        if group is not None and self._mondrian is not None and self._own_group(str(group)):
            return float(self._group_half(np.array([str(group)], dtype=object))[0])
        return float(self._pooled.predict_int(np.zeros(1), sigmas=np.ones(1), confidence=self.confidence)[0, 1])

    def _group_half(self, labels: np.ndarray) -> np.ndarray:
        """Mondrian half-widths (sigma 1) of rows whose groups all have enough calibration points."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # crepes warns about every small group, used here or not
            iv = self._mondrian.predict_int(np.zeros(len(labels)), sigmas=np.ones(len(labels)), bins=labels,
                                            confidence=self.confidence)
        return iv[:, 1]

    def _own_group(self, g: str) -> bool:
        return g in self._group_n and g not in self.pooled_groups

    def _check(self) -> None:
        if self._pooled is None:
            raise RuntimeError("the score intervals are not calibrated (call fit) or loaded")

    def interval(self, predicted: Any, *, difficulty: Any = None, groups: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper bounds of the intervals of new predicted scores.

        Parameters
        ----------
        predicted : array-like
            ``(n,)`` predicted scores.
        difficulty : array-like, optional
            ``(n,)`` difficulties, needed when the intervals were fitted normalized (ignored
            otherwise).
        groups : array-like, optional
            ``(n,)`` group labels; used when the intervals were fitted with groups.

        Returns
        -------
        lower, upper : numpy.ndarray
            ``(n,)`` each; NaN where the prediction or the difficulty is NaN.

        Raises
        ------
        ValueError
            Normalized intervals without ``difficulty``, or lengths that differ.
        """
        self._check()
        pred = _vector(predicted, "predicted")
        n = len(pred)
        sigma = np.ones(n)
        if self.is_normalized:
            if difficulty is None:
                raise ValueError("these intervals were calibrated with a difficulty (normalized); pass difficulty")
            d = _vector(difficulty, "difficulty", n)
            sigma = self._sigma(np.where(d >= 0, d, np.nan))
        half = np.full(n, self.threshold())
        g = _labels(groups, n)
        if g is not None and self._mondrian is not None:
            own = np.array([self._own_group(v) for v in g.tolist()], dtype=bool)
            if own.any():
                half[own] = self._group_half(g[own])
        lower, upper = pred - half * sigma, pred + half * sigma
        if self.y_min is not None:
            lower, upper = np.maximum(lower, self.y_min), np.maximum(upper, self.y_min)
        if self.y_max is not None:
            lower, upper = np.minimum(lower, self.y_max), np.minimum(upper, self.y_max)
        bad = ~np.isfinite(pred) | ~np.isfinite(sigma)
        lower[bad], upper[bad] = np.nan, np.nan
        return lower, upper

    # -- storing ------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        r"""Everything that rebuilds the intervals, as JSON values.

        Returns
        -------
        dict
            ``method``, ``confidence``, ``normalized`` (used), ``beta``, ``difficulty_scale``,
            ``y_min``/``y_max`` (None: unbounded), ``n_calibration``, ``n_dropped``,
            ``threshold`` (pooled :math:`\alpha^*`), ``group_thresholds``, ``pooled_groups``,
            ``scores`` (the nonconformity scores) and ``groups`` (their labels, or None),
            ``crepes_version``.
        """
        self._check()
        groups = sorted(self._group_n)
        return {"method": METHOD, "confidence": self.confidence, "normalized": self.is_normalized,
                "beta": self.beta, "difficulty_scale": self.difficulty_scale, "y_min": self.y_min, "y_max": self.y_max,
                "n_calibration": self.n_calibration, "n_dropped": self.n_dropped, "threshold": self.threshold(),
                "group_thresholds": {k: self.threshold(k) for k in groups},
                "group_sizes": {k: self._group_n[k] for k in groups}, "pooled_groups": list(self.pooled_groups),
                "scores": [float(s) for s in self._scores],
                "groups": None if self._groups is None else [str(v) for v in self._groups.tolist()],
                "crepes_version": str(getattr(_crepes(), "__version__", "unknown"))}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ScoreIntervals:
        """Inverse of :meth:`to_dict`.

        Parameters
        ----------
        d : dict
            As written by :meth:`to_dict` (e.g. ``json.loads`` of a product attribute).

        Raises
        ------
        ValueError
            A key is missing.
        """
        need = ["confidence", "normalized", "beta", "difficulty_scale", "scores"]
        missing = [k for k in need if k not in d]
        if missing:
            raise ValueError(f"score interval record lacks {missing}; expected the output of ScoreIntervals.to_dict")
        out = cls(confidence=d["confidence"], normalized=bool(d["normalized"]), beta=d["beta"],
                  y_min=d.get("y_min"), y_max=d.get("y_max"))
        out.is_normalized = bool(d["normalized"])
        out.difficulty_scale = float(d["difficulty_scale"])
        out.n_dropped = int(d.get("n_dropped", 0))
        groups = d.get("groups")
        out._calibrate(np.asarray(d["scores"], dtype=np.float64),
                       None if groups is None else np.array([str(v) for v in groups], dtype=object))
        return out

    def __repr__(self) -> str:
        if self._pooled is None:
            return f"ScoreIntervals(confidence={self.confidence}, uncalibrated)"
        return (f"ScoreIntervals(confidence={self.confidence}, normalized={self.is_normalized}, "
                f"n={self.n_calibration}, groups={len(self._group_n)})")


def _summary(inside: np.ndarray, width: np.ndarray) -> dict[str, Any]:
    n = len(inside)
    return {"share_inside": float(inside.mean()) if n else float("nan"), "n": int(n),
            "mean_width": float(width.mean()) if n else float("nan")}


def coverage(lower: Any, upper: Any, actual: Any, groups: Any = None) -> dict[str, Any]:
    """Share of actual scores inside their intervals, overall and per group.

    Parameters
    ----------
    lower, upper : array-like
        ``(n,)`` interval bounds (:meth:`ScoreIntervals.interval`).
    actual : array-like
        ``(n,)`` actual scores; rows where it or a bound is NaN are left out and counted.
    groups : array-like, optional
        ``(n,)`` group labels (compared as strings).

    Returns
    -------
    dict
        ``overall``: ``{"share_inside", "n", "mean_width"}`` (bounds inclusive); ``groups``:
        the same per group label (sorted; empty without groups); ``n_missing``: rows left out.
    """
    lo = _vector(lower, "lower")
    hi = _vector(upper, "upper", len(lo))
    y = _vector(actual, "actual", len(lo))
    g = _labels(groups, len(lo))
    ok = ~(np.isnan(lo) | np.isnan(hi) | np.isnan(y))
    inside = (y >= lo) & (y <= hi)
    width = hi - lo
    out: dict[str, Any] = {"overall": _summary(inside[ok], width[ok]), "groups": {},
                           "n_missing": int((~ok).sum())}
    if g is not None:
        for label in sorted(set(g[ok].tolist())):
            sel = ok & (g == label)
            out["groups"][label] = _summary(inside[sel], width[sel])
    return out
