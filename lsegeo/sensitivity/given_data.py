"""First-order sensitivity indices estimated from a given sample, without a model.

A given-data estimator needs only inputs and outputs (any sample: the Latin hypercube of
iteration 0, random points, ...). The estimators are plug-ins of :data:`ESTIMATORS` (a
:class:`lsegeo.registry.Registry`), chosen by name in :func:`first_order_given_data`:

* ``rbd_fast``: :func:`SALib.analyze.rbd_fast.analyze`, the random balance design FAST of
  Plischke (2010) applied to given data, bias-corrected after Tissot & Prieur (2012);
* ``binned``: the correlation ratio ``Var(E[Y | X_i]) / Var(Y)`` on equal-count bins of
  ``X_i``, bias-corrected as the epsilon-squared of a one-way ANOVA.

An estimator is ``fn(u, y, names, varied, options) -> (S1, S1_conf)`` with ``u`` the ``(n, D)``
finite inputs, ``y`` the ``(n,)`` finite outputs, ``varied`` the ``(D,)`` mask of the inputs
that vary and ``options`` a :class:`GivenDataOptions`; it fills the indices of the varied inputs
and leaves the others NaN.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lsegeo.registry import Registry
from lsegeo.sensitivity.sobol import unit_problem

__all__ = ["ESTIMATORS", "GivenDataOptions", "first_order_given_data", "rbd_fast", "binned"]

#: given-data estimators of first-order indices, by name
ESTIMATORS: Registry = Registry("sensitivity estimator", {
    "rbd_fast": "lsegeo.sensitivity.given_data:rbd_fast",
    "binned": "lsegeo.sensitivity.given_data:binned",
})


@dataclass(frozen=True)
class GivenDataOptions:
    """Settings of the given-data estimators (each uses those that concern it).

    Attributes
    ----------
    M : int
        Harmonics of RBD-FAST. 6 suits samples of 100-1000 members: it has a lower error than
        SALib's default 10 on 200-member samples of the Ishigami function.
    n_bins : int or None
        Bins of the binned estimator; None: ``round(sqrt(n))``, at least 4.
    num_resamples : int
        Bootstrap resamples of the RBD-FAST interval; 0 skips it (NaN intervals, faster).
    conf_level : float
        Level of the interval.
    seed : int
        Seed of the bootstrap.
    """

    M: int = 6
    n_bins: int | None = None
    num_resamples: int = 30
    conf_level: float = 0.95
    seed: int = 0


def rbd_fast(u: np.ndarray, y: np.ndarray, names: Sequence[str], varied: np.ndarray,
             options: GivenDataOptions) -> tuple[np.ndarray, np.ndarray]:
    """RBD-FAST first-order indices of the varied inputs (SALib, Tissot & Prieur bias correction).

    Parameters
    ----------
    u : numpy.ndarray
        ``(n, D)`` finite inputs (only their ranks matter).
    y : numpy.ndarray
        ``(n,)`` finite outputs.
    names : sequence of str
        The ``D`` input names.
    varied : numpy.ndarray
        ``(D,)`` bool, the inputs that vary.
    options : GivenDataOptions
        ``M``, ``num_resamples``, ``conf_level``, ``seed``.

    Returns
    -------
    S1, S1_conf : numpy.ndarray
        ``(D,)`` each; NaN for the inputs that do not vary (and for the interval when
        ``num_resamples < 2``).
    """
    from SALib.analyze import rbd_fast as salib_rbd_fast

    d = u.shape[1]
    s1, conf = np.full(d, np.nan), np.full(d, np.nan)
    cols = np.flatnonzero(varied)
    if cols.size:
        problem = unit_problem([names[j] for j in cols])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            r = salib_rbd_fast.analyze(problem, u[:, cols], y, M=options.M,
                                       num_resamples=max(2, options.num_resamples),
                                       conf_level=options.conf_level, seed=int(options.seed))
        s1[cols] = r["S1"]
        if options.num_resamples >= 2:
            conf[cols] = r["S1_conf"]
    return s1, conf


def _binned_s1(x: np.ndarray, y: np.ndarray, n_bins: int) -> float:
    """Bias-corrected correlation ratio of ``y`` on equal-count bins of ``x``."""
    n = y.size
    order = np.argsort(x, kind="stable")
    g = np.empty(n, dtype=np.int64)
    g[order] = np.arange(n) * n_bins // n
    cnt = np.bincount(g, minlength=n_bins)
    means = np.bincount(g, y, minlength=n_bins) / cnt
    ym = y.mean()
    sst = float(((y - ym) ** 2).sum())
    ssb = float((cnt * (means - ym) ** 2).sum())
    msw = (sst - ssb) / (n - n_bins)
    return (ssb - (n_bins - 1) * msw) / sst


def binned(u: np.ndarray, y: np.ndarray, names: Sequence[str], varied: np.ndarray,
           options: GivenDataOptions) -> tuple[np.ndarray, np.ndarray]:
    """Binned correlation ratio of the varied inputs: ``(SSB - (B - 1) MSW) / SST`` on ``B`` bins.

    Parameters are those of :func:`rbd_fast`; of the options only ``n_bins`` is used.

    Returns
    -------
    S1, S1_conf : numpy.ndarray
        ``(D,)`` each; the interval is always NaN.

    Raises
    ------
    ValueError
        The number of bins is not in ``[2, n)``.
    """
    n, d = u.shape
    s1, conf = np.full(d, np.nan), np.full(d, np.nan)
    b = options.n_bins if options.n_bins is not None else max(4, round(math.sqrt(n)))
    if not 2 <= b < n:
        raise ValueError(f"n_bins must be in [2, n) = [2, {n}), got {b}")
    for j in np.flatnonzero(varied):
        s1[j] = _binned_s1(u[:, j], y, b)
    return s1, conf


def first_order_given_data(
    u: np.ndarray,
    y: np.ndarray,
    param_names: Sequence[str] | None = None,
    *,
    method: str = "rbd_fast",
    M: int = GivenDataOptions.M,
    n_bins: int | None = GivenDataOptions.n_bins,
    num_resamples: int = GivenDataOptions.num_resamples,
    conf_level: float = GivenDataOptions.conf_level,
    seed: int = GivenDataOptions.seed,
) -> tuple[np.ndarray, np.ndarray]:
    """First-order sensitivity indices estimated from a given sample, without a model.

    Parameters
    ----------
    u : numpy.ndarray
        ``(n, D)`` inputs (any sample: Latin hypercube, random, ...). Both estimators use only
        the ranks of each column, so the scale of the inputs does not matter.
    y : numpy.ndarray
        ``(n,)`` outputs. Rows with a non-finite output or input are dropped.
    param_names : sequence of str, optional
        Names of the ``D`` inputs (for SALib).
    method : str
        A name of :data:`ESTIMATORS`: ``"rbd_fast"`` (:func:`rbd_fast`, with ``M`` harmonics and
        a bootstrap interval) or ``"binned"`` (:func:`binned`, on ``n_bins`` equal-count bins;
        no interval).
    M, n_bins, num_resamples, conf_level, seed
        See :class:`GivenDataOptions`.

    Returns
    -------
    S1, S1_conf : numpy.ndarray
        ``(D,)`` each. An input that does not vary, or too few finite rows (fewer than
        ``max(2 M + 2, 8)``), gives NaN.

    Raises
    ------
    ValueError
        ``u`` and ``y`` do not match, or the estimator refuses its settings.
    lsegeo.errors.UnknownNameError
        ``method`` is not a registered estimator.
    """
    estimator = ESTIMATORS.get(method)
    u = np.asarray(u, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64).ravel()
    if u.ndim != 2 or u.shape[0] != y.size:
        raise ValueError(f"u must be (n, D) and y (n,), got {u.shape} and {y.shape}")
    d = u.shape[1]
    names = [str(p) for p in param_names] if param_names is not None else [f"x{i}" for i in range(d)]
    keep = np.isfinite(y) & np.all(np.isfinite(u), axis=1)
    u, y = u[keep], y[keep]
    if y.size < max(2 * M + 2, 8) or np.std(y) == 0:
        return np.full(d, np.nan), np.full(d, np.nan)
    options = GivenDataOptions(M=M, n_bins=n_bins, num_resamples=num_resamples, conf_level=conf_level, seed=seed)
    return estimator(u, y, names, np.ptp(u, axis=0) > 0, options)
