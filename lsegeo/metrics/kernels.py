"""Array kernels of the scores of simulated against observed streamflow (numpy).

The kernels (``kge_np``, ``nse_np``, ... and :func:`score_all`) work on arrays with
  time on the *last* axis. ``sim`` of shape ``(..., T)`` is scored against ``obs`` of shape
  ``(T,)`` or ``(..., T)`` (any shapes that broadcast over the leading axes) and the result has
  the broadcast leading shape ``(...)``. They are vectorised: an ensemble of 200 members x
  3650 days against one observed series takes a handful of array passes and no Python loop
over members.

The other two layers of :mod:`lsegeo.metrics` build on these: :mod:`lsegeo.metrics.objectives`
(the registry of objectives: units, sense, the value of a perfect simulation, losses) and
:mod:`lsegeo.metrics.xarray_api` (the same scores on DataArrays, lazy on dask).

Conventions shared by every score
---------------------------------
Missing days
    A day counts only where *both* ``sim`` and ``obs`` are not NaN. The other days are
    skipped (never treated as zero flow): means, variances, covariances and errors are taken
    over the valid days only, separately for every member/basin. Only NaN marks a missing day;
    ``+-inf`` is not skipped and spoils the score (a blown-up simulation must not look good).
Minimum number of valid days
    ``min_valid`` (default :data:`DEFAULT_MIN_VALID` = 2, the fewest for which a variance and a
    correlation exist). With fewer valid days the score is NaN. Callers that want a
    statistically meaningful score (e.g. calibration on ten years) should raise it.
Degenerate series give NaN, never an exception or ``inf``
    * zero variance of ``obs`` over the valid days: ``r``, ``alpha``, ``gamma``, NSE and
      logNSE are undefined -> NaN for KGE, KGE', nKGE', NSE, logNSE;
    * zero mean of ``obs``: ``beta`` (and ``gamma``) undefined -> NaN for KGE, KGE', nKGE';
      logNSE too, since its offset ``eps`` is then 0;
    * zero variance of ``sim`` (a constant simulation): the correlation ``r`` is undefined ->
      NaN for KGE, KGE' and nKGE' (NSE, logNSE, MAE, RMSE and the monthly score stay defined;
      a constant simulation has NSE <= 0 anyway). Callers minimising :func:`as_loss` must
      therefore treat NaN as "worst";
    * zero mean of ``sim`` with ``obs`` valid: ``gamma`` undefined -> NaN for KGE', nKGE'.

    "Zero variance" is tested with a relative tolerance: a standard deviation not larger than
    ``1e-10 * |mean|`` (the round-off of a constant series) counts as zero.
Statistics
    Population moments (``ddof=0``); the choice cancels in ``r``, ``alpha`` and ``gamma`` and
    does not enter NSE. Computation is in float64 with two-pass (centred) moments.

References
----------
Gupta, H. V., Kling, H., Yilmaz, K. K. and Martinez, G. F. (2009). Decomposition of the mean
squared error and NSE performance criteria: implications for improving hydrological modelling.
*J. Hydrol.* 377, 80-91. doi:10.1016/j.jhydrol.2009.08.003

Kling, H., Fuchs, M. and Paulin, M. (2012). Runoff conditions in the upper Danube basin under an
ensemble of climate change scenarios. *J. Hydrol.* 424-425, 264-277.
doi:10.1016/j.jhydrol.2012.01.011

Nash, J. E. and Sutcliffe, J. V. (1970). River flow forecasting through conceptual models
part I - a discussion of principles. *J. Hydrol.* 10, 282-290.
doi:10.1016/0022-1694(70)90255-6
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import cached_property
from typing import Any

import numpy as np

from lsegeo.errors import UnknownNameError

__all__ = [
    "DEFAULT_MIN_VALID",
    "LOGNSE_EPS_FRACTION",
    "FLOW_UNITS",
    "SCORE_NAMES",
    "bounded_efficiency",
    "unbounded_efficiency",
    "score_all",
    "kge_np",
    "kgeprime_np",
    "nkgeprime_np",
    "nse_np",
    "lognse_np",
    "mae_np",
    "rmse_np",
    "monthly_mean_maxabs_np",
]

DEFAULT_MIN_VALID = 2
"""Fewest valid (non-NaN in both sim and obs) days for a score; fewer gives NaN."""

LOGNSE_EPS_FRACTION = 0.01
"""logNSE offset: ``eps = LOGNSE_EPS_FRACTION * mean(obs)`` over the valid days."""

_ZERO_STD_RTOL = 1e-10  # std <= rtol * |mean| counts as a zero variance (constant series)

FLOW_UNITS = "mm day-1"
"""UDUNITS string of streamflow and of the error scores (MAE, RMSE, the monthly score)."""


# ---------------------------------------------------------------------------------------------
# shared pieces
# ---------------------------------------------------------------------------------------------


def _as_float(x: Any, what: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 0:
        raise ValueError(f"{what} must have a time axis (last axis); got a scalar")
    return a


class _Pieces:
    """The statistics the scores share, each computed once on first use.

    Arrays keep the smallest shape they can: when ``sim`` has no NaN the valid-day mask is the
    observed one, so the observed statistics are computed once for all members and broadcast.
    """

    def __init__(
        self,
        sim: Any,
        obs: Any,
        min_valid: int = DEFAULT_MIN_VALID,
        *,
        valid: np.ndarray | None = None,
        month: Any = None,
    ) -> None:
        s = _as_float(sim, "sim")
        o = _as_float(obs, "obs")
        if s.shape[-1] != o.shape[-1]:
            raise ValueError(
                f"sim and obs must have the same length on the last (time) axis; "
                f"got {s.shape[-1]} and {o.shape[-1]}"
            )
        try:
            self.shape = np.broadcast_shapes(s.shape[:-1], o.shape[:-1])
        except ValueError:
            raise ValueError(
                f"sim {s.shape} and obs {o.shape} do not broadcast over the leading axes"
            ) from None
        if isinstance(min_valid, bool) or int(min_valid) != min_valid or min_valid < 1:
            raise ValueError(f"min_valid must be an integer >= 1, got {min_valid!r}")
        self.s, self.o, self.min_valid = s, o, int(min_valid)
        self._month = month
        if valid is None:
            nan_s = np.isnan(s)
            valid = ~np.isnan(o)
            if nan_s.any():
                valid = valid & ~nan_s
        self.valid = valid

    # -- counts and means ---------------------------------------------------------------------
    @cached_property
    def n(self) -> np.ndarray:
        return np.count_nonzero(self.valid, axis=-1)

    @cached_property
    def enough(self) -> np.ndarray:
        return self.n >= self.min_valid

    def _masked(self, x: np.ndarray) -> np.ndarray:
        return np.where(self.valid, x, 0.0)

    @staticmethod
    def _div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)

    @cached_property
    def ms(self) -> np.ndarray:
        return self._div(self._masked(self.s).sum(axis=-1), self.n)

    @cached_property
    def mo(self) -> np.ndarray:
        return self._div(self._masked(self.o).sum(axis=-1), self.n)

    # -- centred moments ----------------------------------------------------------------------
    @cached_property
    def ds(self) -> np.ndarray:
        return self._masked(self.s - self.ms[..., None])

    @cached_property
    def do(self) -> np.ndarray:
        return self._masked(self.o - self.mo[..., None])

    @cached_property
    def sd_s(self) -> np.ndarray:
        return np.sqrt(self._div(np.einsum("...t,...t->...", self.ds, self.ds), self.n))

    @cached_property
    def sd_o(self) -> np.ndarray:
        return np.sqrt(self._div(np.einsum("...t,...t->...", self.do, self.do), self.n))

    @cached_property
    def cov(self) -> np.ndarray:
        return self._div(np.einsum("...t,...t->...", self.ds, self.do), self.n)

    @cached_property
    def sim_varies(self) -> np.ndarray:
        return self.sd_s > _ZERO_STD_RTOL * np.abs(self.ms)

    @cached_property
    def obs_varies(self) -> np.ndarray:
        return self.sd_o > _ZERO_STD_RTOL * np.abs(self.mo)

    # -- KGE components -----------------------------------------------------------------------
    @cached_property
    def r(self) -> np.ndarray:
        ok = self.sim_varies & self.obs_varies
        with np.errstate(divide="ignore", invalid="ignore"):
            r = self.cov / (self.sd_s * self.sd_o)
        return np.where(ok, np.clip(r, -1.0, 1.0), np.nan)

    @cached_property
    def alpha(self) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(self.obs_varies, self.sd_s / self.sd_o, np.nan)

    @cached_property
    def beta(self) -> np.ndarray:
        ok = self.mo != 0
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(ok, self.ms / np.where(ok, self.mo, 1.0), np.nan)

    @cached_property
    def gamma(self) -> np.ndarray:
        ok = (self.ms != 0) & (self.mo != 0) & self.obs_varies
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(ok, (self.sd_s / self.ms) / (self.sd_o / self.mo), np.nan)

    # -- errors -------------------------------------------------------------------------------
    @cached_property
    def err(self) -> np.ndarray:
        return self._masked(self.s - self.o)

    @cached_property
    def mse(self) -> np.ndarray:
        return self._div(np.einsum("...t,...t->...", self.err, self.err), self.n)

    @cached_property
    def mae(self) -> np.ndarray:
        return self._div(np.abs(self.err).sum(axis=-1), self.n)

    # -- log-transformed flows ----------------------------------------------------------------
    @cached_property
    def eps(self) -> np.ndarray:
        return LOGNSE_EPS_FRACTION * self.mo

    @cached_property
    def log(self) -> _Pieces:
        eps = np.where(self.eps > 0, self.eps, np.nan)[..., None]
        with np.errstate(divide="ignore", invalid="ignore"):
            ls = np.log(np.maximum(self.s, 0.0) + eps)
            lo = np.log(np.maximum(self.o, 0.0) + eps)
        return _Pieces(ls, lo, self.min_valid, valid=self.valid)

    # -- monthly means ------------------------------------------------------------------------
    @cached_property
    def monthly_abs_diff(self) -> np.ndarray:
        """``|mean_m(sim) - mean_m(obs)|`` for months 1..12, shape ``(..., 12)``.

        NaN where a month has no valid day.
        """
        if self._month is None:
            raise ValueError("the monthly score needs `month` (integers 1-12, one per day)")
        month = np.asarray(self._month)
        t = self.s.shape[-1]
        if month.shape != (t,):
            raise ValueError(f"month must have shape ({t},) like the time axis, got {month.shape}")
        if t:
            integral = np.issubdtype(month.dtype, np.integer) or (
                np.issubdtype(month.dtype, np.floating) and np.all(month == np.round(month))
            )
            if not integral or month.min() < 1 or month.max() > 12:
                raise ValueError("month must hold integers in 1..12")
        onehot = (month.astype(np.int64)[:, None] == np.arange(1, 13)[None, :]).astype(np.float64)
        nm = self.valid.astype(np.float64) @ onehot  # (..., 12) valid days per month
        sum_s = self._masked(self.s) @ onehot
        sum_o = self._masked(self.o) @ onehot
        with np.errstate(divide="ignore", invalid="ignore"):
            diff = np.abs(sum_s / nm - sum_o / nm)
        return np.where(nm > 0, diff, np.nan)

    # -- output -------------------------------------------------------------------------------
    def finish(self, x: np.ndarray) -> np.ndarray:
        """Broadcast to the output shape, NaN where there are too few valid days, no inf."""
        out = np.where(self.enough & np.isfinite(x), x, np.nan)
        return np.array(np.broadcast_to(out, self.shape), dtype=np.float64)


# ---------------------------------------------------------------------------------------------
# the scores on the pieces
# ---------------------------------------------------------------------------------------------


def _kge(p: _Pieces) -> np.ndarray:
    return 1.0 - np.sqrt((p.r - 1.0) ** 2 + (p.alpha - 1.0) ** 2 + (p.beta - 1.0) ** 2)


def _kgeprime(p: _Pieces) -> np.ndarray:
    return 1.0 - np.sqrt((p.r - 1.0) ** 2 + (p.gamma - 1.0) ** 2 + (p.beta - 1.0) ** 2)


def bounded_efficiency(values):
    """Map an efficiency in (-inf, 1] (KGE, KGE', NSE) monotonically onto (-1, 1]: ``E / (2 - E)``.

    The bounded form of Mathevet et al. (2006) for NSE, applied to KGE' it gives nKGE'. 0 stays
    0 and 1 stays 1; NaN stays NaN. Works on floats, ndarrays and DataArrays.

    References
    ----------
    Mathevet, T., Michel, C., Andréassian, V. and Perrin, C. (2006). A bounded version of the
    Nash-Sutcliffe criterion for better model assessment on large sets of basins. *IAHS Publ.*
    307, 211-219.
    """
    return values / (2.0 - values)


def unbounded_efficiency(values):
    """The inverse of :func:`bounded_efficiency`: ``2 n / (1 + n)`` maps (-1, 1] back onto (-inf, 1].

    -1 (or below) maps to -inf; NaN stays NaN. Takes floats and array-likes; returns a float or
    an ndarray.
    """
    v = np.asarray(values, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(v > -1.0, 2.0 * v / (1.0 + v), np.where(np.isnan(v), np.nan, -np.inf))
    return out if out.ndim else float(out)


def _nkgeprime(p: _Pieces) -> np.ndarray:
    return bounded_efficiency(_kgeprime(p))


def _nse(p: _Pieces) -> np.ndarray:
    var_o = p.sd_o**2
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(p.obs_varies, 1.0 - p.mse / var_o, np.nan)


def _lognse(p: _Pieces) -> np.ndarray:
    return _nse(p.log)


def _mae(p: _Pieces) -> np.ndarray:
    return p.mae


def _rmse(p: _Pieces) -> np.ndarray:
    return np.sqrt(p.mse)


def _monthly(p: _Pieces) -> np.ndarray:
    d = p.monthly_abs_diff
    anymonth = np.any(~np.isnan(d), axis=-1)
    return np.where(anymonth, np.max(np.where(np.isnan(d), -np.inf, d), axis=-1), np.nan)


_ON_PIECES: dict[str, Callable[[_Pieces], np.ndarray]] = {
    "kge": _kge,
    "kgeprime": _kgeprime,
    "nkgeprime": _nkgeprime,
    "nse": _nse,
    "lognse": _lognse,
    "mae": _mae,
    "rmse": _rmse,
    "monthly_mean_maxabs": _monthly,
}

SCORE_NAMES: tuple[str, ...] = tuple(_ON_PIECES)
"""The scores the kernels compute, in their canonical order (the order of :func:`score_all`)."""


# ---------------------------------------------------------------------------------------------
# numpy kernels
# ---------------------------------------------------------------------------------------------

_KERNEL_PARAMS = """
    Parameters
    ----------
    sim : array_like, shape (..., T)
        Simulated flow, time on the last axis.
    obs : array_like, shape (T,) or (..., T)
        Observed flow; leading axes broadcast against those of ``sim``.
    month : array_like of int, shape (T,), optional
        Calendar month (1-12) of each day; only used by the monthly score, ignored otherwise
        (accepted so that every kernel has the same signature).
    min_valid : int, default 2
        Fewest days valid in both ``sim`` and ``obs``; fewer gives NaN.

    Returns
    -------
    ndarray of float64, shape (...)
        The broadcast leading shape (0-d for 1-d inputs). NaN where undefined (see the module
        notes on degenerate series).
"""


def _with_kernel_params(f: Callable) -> Callable:
    """Append the parameters shared by every kernel (:data:`_KERNEL_PARAMS`) to ``f``'s docstring."""
    f.__doc__ = (f.__doc__ or "").rstrip() + "\n" + _KERNEL_PARAMS
    return f


@_with_kernel_params
def kge_np(sim, obs, month=None, *, min_valid: int = DEFAULT_MIN_VALID) -> np.ndarray:
    r"""Kling-Gupta efficiency (Gupta et al. 2009, *J. Hydrol.* 377:80, eq. 9).

    .. math:: KGE = 1 - \sqrt{(r-1)^2 + (\alpha-1)^2 + (\beta-1)^2}

    with ``r`` the Pearson correlation, ``alpha = sigma_s / sigma_o`` and
    ``beta = mu_s / mu_o``, all over the valid days. Range (-inf, 1], perfect = 1.
    NaN when ``sim`` or ``obs`` is constant, or ``mean(obs) == 0``.
    """
    p = _Pieces(sim, obs, min_valid)
    return p.finish(_kge(p))


@_with_kernel_params
def kgeprime_np(sim, obs, month=None, *, min_valid: int = DEFAULT_MIN_VALID) -> np.ndarray:
    r"""Modified Kling-Gupta efficiency KGE' (Kling et al. 2012, *J. Hydrol.* 424:264).

    .. math:: KGE' = 1 - \sqrt{(r-1)^2 + (\gamma-1)^2 + (\beta-1)^2},\quad
              \gamma = \frac{CV_s}{CV_o} = \frac{\sigma_s/\mu_s}{\sigma_o/\mu_o}

    The coefficient-of-variation ratio ``gamma`` replaces ``alpha`` so that the bias and
    variability terms are not cross-correlated. Range (-inf, 1], perfect = 1. NaN when ``sim``
    or ``obs`` is constant, or either mean is 0.
    """
    p = _Pieces(sim, obs, min_valid)
    return p.finish(_kgeprime(p))


@_with_kernel_params
def nkgeprime_np(sim, obs, month=None, *, min_valid: int = DEFAULT_MIN_VALID) -> np.ndarray:
    r"""Normalised KGE': ``KGE' / (2 - KGE')``, bounded in (-1, 1].

    Maps KGE' in (-inf, 1] monotonically onto (-1, 1] (the same normalisation as the bounded
    NSE, Mathevet et al. 2006), so that a few very poor basins or members do not dominate
    averages. ``KGE' = 0`` stays 0 and ``KGE' = 1`` stays 1. NaN where KGE' is NaN.
    """
    p = _Pieces(sim, obs, min_valid)
    return p.finish(_nkgeprime(p))


@_with_kernel_params
def nse_np(sim, obs, month=None, *, min_valid: int = DEFAULT_MIN_VALID) -> np.ndarray:
    r"""Nash-Sutcliffe efficiency (Nash & Sutcliffe 1970, *J. Hydrol.* 10:282).

    .. math:: NSE = 1 - \frac{\sum_t (s_t - o_t)^2}{\sum_t (o_t - \bar o)^2}

    over the valid days, ``o-bar`` the mean of ``obs`` over those days. Range (-inf, 1],
    perfect = 1. NaN when ``obs`` is constant.
    """
    p = _Pieces(sim, obs, min_valid)
    return p.finish(_nse(p))


@_with_kernel_params
def lognse_np(sim, obs, month=None, *, min_valid: int = DEFAULT_MIN_VALID) -> np.ndarray:
    r"""NSE of log-transformed flows, emphasising low flows.

    .. math:: logNSE = NSE(\ln(s + \epsilon), \ln(o + \epsilon)),\quad
              \epsilon = 0.01\,\bar o

    ``eps`` is 1 % of the mean observed flow over the valid days (one value per series, the
    same for ``sim`` and ``obs``). The offset keeps zero flows (ephemeral streams, a model
    drying out) finite instead of ``log(0) = -inf``, and, being relative to the basin's own
    flow, it keeps the score invariant when both series are scaled by the same factor (an
    absolute offset would not). Negative flows (numerical noise) are clipped to 0 before the
    log. NaN when ``mean(obs) <= 0`` (then ``eps`` is not positive) or the logged ``obs`` is
    constant.
    """
    p = _Pieces(sim, obs, min_valid)
    return p.finish(_lognse(p))


@_with_kernel_params
def mae_np(sim, obs, month=None, *, min_valid: int = DEFAULT_MIN_VALID) -> np.ndarray:
    """Mean absolute error ``mean(|s - o|)`` over the valid days [flow units], perfect = 0."""
    p = _Pieces(sim, obs, min_valid)
    return p.finish(_mae(p))


@_with_kernel_params
def rmse_np(sim, obs, month=None, *, min_valid: int = DEFAULT_MIN_VALID) -> np.ndarray:
    """Root mean squared error ``sqrt(mean((s - o)^2))`` over the valid days [flow units].

    Perfect = 0.
    """
    p = _Pieces(sim, obs, min_valid)
    return p.finish(_rmse(p))


@_with_kernel_params
def monthly_mean_maxabs_np(
    sim, obs, month=None, *, min_valid: int = DEFAULT_MIN_VALID
) -> np.ndarray:
    r"""Largest absolute error of the 12 monthly mean flows [flow units], perfect = 0.

    .. math:: \max_{m=1..12} \left| \bar s_m - \bar o_m \right|

    ``s-bar_m`` (``o-bar_m``) is the mean of ``sim`` (``obs``) over all valid days of calendar
    month ``m`` in the period (the mean seasonal cycle, not month-by-month). A month without
    any valid day is left out of the maximum; NaN if no month has one or the whole period has
    fewer than ``min_valid`` valid days. ``month`` is required.
    """
    p = _Pieces(sim, obs, min_valid, month=month)
    return p.finish(_monthly(p))


def _check_names(names: Iterable[str] | None) -> list[str]:
    if names is None:
        return list(SCORE_NAMES)
    if isinstance(names, str):
        names = [names]
    names = list(names)
    for n in names:
        if n not in _ON_PIECES:
            raise UnknownNameError("objective", n, sorted(SCORE_NAMES))
    return names


def score_all(
    sim,
    obs,
    month=None,
    names: Iterable[str] | None = None,
    *,
    min_valid: int = DEFAULT_MIN_VALID,
) -> dict[str, np.ndarray]:
    """Several scores at once, sharing the valid-day mask, means, variances and errors.

    Parameters
    ----------
    sim : array_like, shape (..., T)
        Simulated flow, time on the last axis.
    obs : array_like, shape (T,) or (..., T)
        Observed flow.
    month : array_like of int, shape (T,), optional
        Calendar month of each day; required when ``monthly_mean_maxabs`` is among ``names``
        (including the default ``names=None``, i.e. all scores). When ``names`` is None and
        ``month`` is None, the monthly score is left out.
    names : iterable of str, optional
        Scores to compute (of :data:`SCORE_NAMES`); all by default, in that order.
    min_valid : int, default 2
        Fewest valid days; fewer gives NaN.

    Returns
    -------
    dict of str to ndarray
        ``{name: values}``, each of the broadcast leading shape ``(...)``, in ``names`` order.

    Raises
    ------
    lsegeo.errors.UnknownNameError
        For an unknown name (a ``KeyError``; the message lists the known ones).
    ValueError
        For the monthly score without ``month``, or inconsistent shapes.
    """
    if names is None and month is None:
        names = [n for n in SCORE_NAMES if n != "monthly_mean_maxabs"]
    names = _check_names(names)
    p = _Pieces(sim, obs, min_valid, month=month)
    return {n: p.finish(_ON_PIECES[n](p)) for n in names}
