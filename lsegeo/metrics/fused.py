r"""Fused scores of many members on several periods: one numba pass per (member, period).

:func:`score_periods` computes the same scores as :func:`lsegeo.metrics.kernels.score_all`
(KGE, KGE', nKGE', NSE, logNSE, MAE, RMSE and the monthly score) for the members of one basin
against its observed series, on several periods of the same time axis, and returns them as one
``(member, period, score)`` array. The numpy kernels of :mod:`lsegeo.metrics.kernels` stay the
reference: they define every score (formulas, missing days, ``min_valid``, degenerate series
give NaN, the zero-variance tolerance), and ``tests/test_scores_fused.py`` checks that the two
agree to floating-point reassociation (rtol 1e-10) with the same NaN pattern.

Why a fused kernel
------------------
The numpy kernels build about twenty ``(member, time)`` temporaries (masked copies, centred
deviations, errors, logs) and scoring took about twice as long as running the HBV kernel. Here
every sum the scores need is accumulated in a loop over the days of one member's period, without
temporaries, in the order of the reference's two-pass (centred) moments:

1. the valid-day count ``n`` and the sums of ``sim`` (and of ``obs``) give the means;
2. the centred sums of squares and cross product, the squared and absolute errors, the monthly
   sums and the squared error of the log-transformed flows.

The observed pieces (``n``, mean, centred variance, ``ln(max(obs, 0) + eps)``, monthly sums)
depend on the member only through its valid days; for a member without a NaN on the observed
days they are those of the observed series alone, computed once per period and shared. A member
with NaN days gets its own. Compiled with ``fastmath=False`` (IEEE arithmetic, no reordering
beyond the summation order), ``error_model="numpy"`` (division by zero gives inf/NaN, as numpy
does) and ``cache=True`` (compiled once per installation, loaded by every worker process);
single-threaded, as dask workers are one-thread processes.

References
----------
The formulas are those of :mod:`lsegeo.metrics.kernels` (Gupta et al. 2009; Kling et al. 2012;
Nash and Sutcliffe 1970; Mathevet et al. 2006); the centred two-pass moments follow Chan,
Golub and LeVeque (1983), Algorithms for computing the sample variance: analysis and
recommendations, *Am. Stat.* 37, 242-247, doi:10.1080/00031305.1983.10483115.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numba
import numpy as np

from lsegeo.metrics.kernels import _ZERO_STD_RTOL, DEFAULT_MIN_VALID, LOGNSE_EPS_FRACTION

__all__ = ["FUSED_NAMES", "score_periods", "fused_kernel_stats"]

FUSED_NAMES: tuple[str, ...] = (
    "kge", "kgeprime", "nkgeprime", "nse", "lognse", "mae", "rmse", "monthly_mean_maxabs",
)
"""The scores :func:`score_periods` computes, in the order of its last axis (that of
:data:`lsegeo.metrics.kernels.SCORE_NAMES`)."""

_KGE, _KGEP, _NKGEP, _NSE, _LOGNSE, _MAE, _RMSE, _MONTHLY = range(8)

_JIT = {"cache": True, "fastmath": False, "error_model": "numpy", "nogil": True}


# ---------------------------------------------------------------------------------------------
# numba kernels
# ---------------------------------------------------------------------------------------------


@numba.njit(**_JIT)
def _mean_css(x, o, s, own_mask):  # pragma: no cover - compiled
    """Days, mean and centred sum of squares of ``x`` on the valid days.

    A day is valid where ``o`` is not NaN (nor ``s``, when ``own_mask``).
    """
    n = 0
    total = 0.0
    for t in range(x.shape[0]):
        if np.isnan(o[t]) or (own_mask and np.isnan(s[t])):
            continue
        n += 1
        total += x[t]
    mean = total / n if n > 0 else np.nan
    css = 0.0
    for t in range(x.shape[0]):
        if np.isnan(o[t]) or (own_mask and np.isnan(s[t])):
            continue
        d = x[t] - mean
        css += d * d
    return n, mean, css


@numba.njit(**_JIT)
def _obs_pieces(o, s, own_mask, month, lo, nm, om, need_log, need_month):  # pragma: no cover - compiled
    """The observed pieces over the valid days of ``o`` (and of ``s`` when ``own_mask``).

    Fills ``lo`` (the logged obs, valid days only), ``nm`` and ``om`` (days and sums of obs per
    month); returns ``(n, mean, centred sum of squares, eps, mean of lo, centred sum of squares
    of lo)``.
    """
    t_len = o.shape[0]
    n, mo, soo = _mean_css(o, o, s, own_mask)
    for k in range(12):
        nm[k] = 0.0
        om[k] = 0.0
    if need_month:
        for t in range(t_len):
            ot = o[t]
            if np.isnan(ot) or (own_mask and np.isnan(s[t])):
                continue
            k = month[t] - 1
            nm[k] += 1.0
            om[k] += ot
    eps = LOGNSE_EPS_FRACTION * mo
    mlo = np.nan
    sloo = np.nan
    if need_log:
        e = eps if eps > 0 else np.nan
        for t in range(t_len):
            ot = o[t]
            if np.isnan(ot) or (own_mask and np.isnan(s[t])):
                continue
            lo[t] = np.log((ot if ot > 0.0 else 0.0) + e)
        _, mlo, sloo = _mean_css(lo, o, s, own_mask)
    return n, mo, soo, eps, mlo, sloo


@numba.njit(**_JIT)
def _ratio(num, n):  # pragma: no cover - compiled
    return num / n if n > 0 else np.nan


@numba.njit(**_JIT)
def _efficiencies(r, a_or_g, beta):  # pragma: no cover - compiled
    return 1.0 - np.sqrt((r - 1.0) ** 2 + (a_or_g - 1.0) ** 2 + (beta - 1.0) ** 2)


@numba.njit(**_JIT)
def _member(s, o, month, ss, n, mo, soo, eps, mlo, sloo, lo, nm, om, min_valid, need_log, need_month,
            out):  # pragma: no cover - compiled
    """Score one member ``s`` (sum ``ss`` over the valid days) against ``o`` with the observed pieces given.

    Fills ``out[0:8]`` in the order of :data:`FUSED_NAMES`.
    """
    t_len = o.shape[0]
    ms = ss / n if n > 0 else np.nan
    sss = 0.0
    sso = 0.0
    see = 0.0
    sae = 0.0
    sle = 0.0
    sm = np.zeros(12)
    e_log = eps if eps > 0 else np.nan
    for t in range(t_len):
        st = s[t]
        ot = o[t]
        if np.isnan(ot) or np.isnan(st):
            continue
        ds = st - ms
        do = ot - mo
        sss += ds * ds
        sso += ds * do
        err = st - ot
        see += err * err
        sae += abs(err)
        if need_month:
            sm[month[t] - 1] += st
        if need_log:
            el = np.log((st if st > 0.0 else 0.0) + e_log) - lo[t]
            sle += el * el
    sd_s = np.sqrt(_ratio(sss, n))
    sd_o = np.sqrt(_ratio(soo, n))
    cov = _ratio(sso, n)
    sim_varies = sd_s > _ZERO_STD_RTOL * abs(ms)
    obs_varies = sd_o > _ZERO_STD_RTOL * abs(mo)
    r = np.nan
    if sim_varies and obs_varies:
        r = cov / (sd_s * sd_o)
        if r > 1.0:
            r = 1.0
        elif r < -1.0:
            r = -1.0
    alpha = sd_s / sd_o if obs_varies else np.nan
    beta = ms / mo if mo != 0 else np.nan
    gamma = (sd_s / ms) / (sd_o / mo) if (ms != 0 and mo != 0 and obs_varies) else np.nan
    kgep = _efficiencies(r, gamma, beta)
    mse = _ratio(see, n)
    out[_KGE] = _efficiencies(r, alpha, beta)
    out[_KGEP] = kgep
    out[_NKGEP] = kgep / (2.0 - kgep)
    out[_NSE] = 1.0 - mse / (sd_o**2) if obs_varies else np.nan
    out[_MAE] = _ratio(sae, n)
    out[_RMSE] = np.sqrt(mse)
    out[_LOGNSE] = np.nan
    if need_log:
        sd_lo = np.sqrt(_ratio(sloo, n))
        if sd_lo > _ZERO_STD_RTOL * abs(mlo):
            out[_LOGNSE] = 1.0 - _ratio(sle, n) / (sd_lo**2)
    out[_MONTHLY] = np.nan
    if need_month:
        best = -np.inf
        seen = False
        for k in range(12):
            if nm[k] > 0:
                d = abs(sm[k] / nm[k] - om[k] / nm[k])
                if not np.isnan(d):
                    seen = True
                    if d > best:
                        best = d
        if seen:
            out[_MONTHLY] = best
    enough = n >= min_valid
    for j in range(8):
        if not (enough and np.isfinite(out[j])):
            out[j] = np.nan


@numba.njit(**_JIT)
def _score_block(q, obs, month, starts, stops, min_valid, need_log, need_month, out):  # pragma: no cover
    """Fill ``out (member, period, 8)`` with the scores of ``q[:, a:b]`` against ``obs[a:b]``."""
    n_members = q.shape[0]
    lo = np.empty(obs.shape[0])
    lo_own = np.empty(obs.shape[0])
    nm = np.zeros(12)
    om = np.zeros(12)
    nm_own = np.zeros(12)
    om_own = np.zeros(12)
    for k in range(starts.shape[0]):
        a, b = starts[k], stops[k]
        o = obs[a:b]
        mo_ = month[a:b]
        lo_p = lo[a:b]
        n, mo, soo, eps, mlo, sloo = _obs_pieces(o, o, False, mo_, lo_p, nm, om, need_log, need_month)
        for i in range(n_members):
            s = q[i, a:b]
            # pass 1: the sum of sim over the valid days, and whether sim adds missing days of its own
            own = False
            ss = 0.0
            for t in range(b - a):
                if np.isnan(o[t]):
                    continue
                st = s[t]
                if np.isnan(st):
                    own = True
                else:
                    ss += st
            if own:
                lo_m = lo_own[a:b]
                n2, mo2, soo2, eps2, mlo2, sloo2 = _obs_pieces(o, s, True, mo_, lo_m, nm_own, om_own, need_log,
                                                               need_month)
                _member(s, o, mo_, ss, n2, mo2, soo2, eps2, mlo2, sloo2, lo_m, nm_own, om_own, min_valid, need_log,
                        need_month, out[i, k])
            else:
                _member(s, o, mo_, ss, n, mo, soo, eps, mlo, sloo, lo_p, nm, om, min_valid, need_log, need_month,
                        out[i, k])


# ---------------------------------------------------------------------------------------------
# the Python entry point
# ---------------------------------------------------------------------------------------------


def _check_month(month, t: int) -> np.ndarray:
    """``month`` as int64 of shape ``(t,)`` in 1..12, or ValueError (the reference's messages)."""
    m = np.asarray(month)
    if m.shape != (t,):
        raise ValueError(f"month must have shape ({t},) like the time axis, got {m.shape}")
    if t:
        integral = np.issubdtype(m.dtype, np.integer) or (
            np.issubdtype(m.dtype, np.floating) and np.all(m == np.round(m)))
        if not integral or m.min() < 1 or m.max() > 12:
            raise ValueError("month must hold integers in 1..12")
    return np.ascontiguousarray(m, dtype=np.int64)


def score_periods(
    sim,
    obs,
    month,
    slices: Mapping[str, slice] | Iterable[slice],
    names: Iterable[str] | None = None,
    *,
    min_valid: int = DEFAULT_MIN_VALID,
) -> np.ndarray:
    """Scores of every member on every period, in one compiled pass per (member, period).

    The same values as ``score_all(sim[:, sl], obs[sl], month[sl], names)`` for each period
    ``sl`` (:func:`lsegeo.metrics.kernels.score_all`), to floating-point reassociation, with
    the same NaN wherever the reference has NaN.

    Parameters
    ----------
    sim : array_like, shape (member, T)
        Simulated flow of each member [mm day-1], time on the last axis.
    obs : array_like, shape (T,)
        Observed flow on the same days [mm day-1]; NaN marks a missing day.
    month : array_like of int, shape (T,), optional
        Calendar month (1-12) of each day; required when ``monthly_mean_maxabs`` is among
        ``names`` (may be None otherwise).
    slices : mapping of str to slice, or iterable of slice
        Each period's days on the time axis (:func:`lsegeo.periods.period_slices`); steps other
        than 1 are not supported.
    names : iterable of str, optional
        Scores of :data:`FUSED_NAMES`, in the order wanted on the last axis; all by default.
    min_valid : int, default 2
        Fewest days valid in both ``sim`` and ``obs``; fewer gives NaN.

    Returns
    -------
    ndarray of float64, shape (member, period, len(names))

    Raises
    ------
    ValueError
        Shapes that do not fit, a slice with a step, a ``min_valid`` below 1, or the monthly score
        without a valid ``month``.
    KeyError
        A name the fused kernel does not compute (the caller falls back on the numpy kernels).
    """
    names = list(FUSED_NAMES if names is None else ([names] if isinstance(names, str) else names))
    unknown = [n for n in names if n not in FUSED_NAMES]
    if unknown:
        raise KeyError(f"no fused kernel for {unknown}; fused scores: {', '.join(FUSED_NAMES)}")
    if isinstance(min_valid, bool) or int(min_valid) != min_valid or min_valid < 1:
        raise ValueError(f"min_valid must be an integer >= 1, got {min_valid!r}")
    q = np.ascontiguousarray(sim, dtype=np.float64)
    o = np.ascontiguousarray(obs, dtype=np.float64)
    if q.ndim != 2 or o.ndim != 1 or q.shape[1] != o.shape[0]:
        raise ValueError(f"sim must be (member, T) and obs (T,) with the same T; got {q.shape} and {o.shape}")
    t_len = o.shape[0]
    need_month = "monthly_mean_maxabs" in names
    if need_month:
        if month is None:
            raise ValueError("the monthly score needs `month` (integers 1-12, one per day)")
        m = _check_month(month, t_len)
    else:
        m = np.ones(t_len, dtype=np.int64)
    sls = list(slices.values() if isinstance(slices, Mapping) else slices)
    bounds = [sl.indices(t_len) for sl in sls]
    if any(step != 1 for _, _, step in bounds):
        raise ValueError(f"period slices must have step 1, got {sls}")
    starts = np.array([a for a, _, _ in bounds], dtype=np.int64)
    stops = np.array([max(a, b) for a, b, _ in bounds], dtype=np.int64)
    out = np.empty((q.shape[0], len(sls), len(FUSED_NAMES)))
    _score_block(q, o, m, starts, stops, int(min_valid), "lognse" in names, need_month, out)
    return out[:, :, [FUSED_NAMES.index(n) for n in names]]


def fused_kernel_stats() -> dict[str, int]:
    """Compilations loaded from numba's cache and compiled afresh in this process so far.

    Returns
    -------
    dict
        ``cache_hits`` and ``cache_misses`` summed over the fused kernels (a miss is a compilation;
        in a worker process after the first run on a machine every kernel should be a hit).
    """
    hits = misses = 0
    for f in (_obs_pieces, _ratio, _efficiencies, _member, _score_block):
        st = f.stats
        hits += sum(st.cache_hits.values())
        misses += sum(st.cache_misses.values())
    return {"cache_hits": hits, "cache_misses": misses}
