r"""The embedded default process model: a conceptual rainfall-runoff model of the HBV family.

The model follows the structure of HBV-light (Seibert & Vis 2012), itself a version of the HBV
model of Bergström (1992, 1995) as revised by Lindström et al. (1997). It runs on a daily step,
lumped over a basin, for many parameter sets ("members") at once: the kernel loops over time
in the outer loop and over members in the inner loop, on contiguous state arrays of length
``members``. Forcing is precipitation :math:`P` (mm d-1), air temperature :math:`T` (degC, the
mean of Daymet ``tmax`` and ``tmin``) and potential evapotranspiration :math:`E_p` (mm d-1).

Equations (one day, in the order they are computed)
---------------------------------------------------
All fluxes are in mm d-1 over a one-day step, so a flux is also a depth (mm). Storages are
updated explicitly, and every outflow is limited by what its storage holds, so no storage ever
becomes negative, whatever the parameters (within bounds or not, as long as they pass
:func:`check_params`).

*Snow routine* (degree-day; Bergström 1992; Seibert & Vis 2012, Sect. 2.1). Precipitation is
snow when :math:`T < TT`, and snowfall is multiplied by the snowfall correction factor::

    snow = SFCF * P   if T < TT   else 0
    rain = P          if T >= TT  else 0

    SP   <- SP + snow
    melt = min(max(CFMAX * (T - TT), 0), SP);               SP <- SP - melt
    WC   <- WC + rain + melt
    refr = min(max(CFR * CFMAX * (TT - T), 0), WC);         SP <- SP + refr,  WC <- WC - refr
    I    = max(WC - CWH * SP, 0);                            WC <- WC - I

``SP`` is the frozen snowpack, ``WC`` the liquid water held in it (at most ``CWH * SP``) and
``I`` the water released to the soil. Rain on bare ground passes straight through (``CWH * SP``
is then 0). Because SFCF multiplies snowfall, the water that enters the model is not ``P`` but
the *corrected precipitation* ``rain + SFCF * P[snow days]``; that is the input of the water
balance (reported as ``"input"`` by :func:`simulate_basin`).

*Soil routine* (Bergström 1992; Seibert & Vis 2012, Sect. 2.2). With soil moisture ``SM`` at
the start of the day::

    R    = I * (SM / FC) ** BETA                      # recharge to the upper zone
    SM  <- SM + I - R
    R   <- R + max(SM - FC, 0),  SM <- min(SM, FC)    # a full soil passes on the rest
    Ea   = min(Ep * min(SM / (LP * FC), 1), SM)       # actual evapotranspiration
    SM  <- SM - Ea

``Ep`` is taken as ``max(Ep, 0)`` (no condensation onto the soil). ``SM`` stays within
``[0, FC]``, so ``SM / FC`` is in ``[0, 1]`` and the power is always defined.

*Response routine* (two linear reservoirs with a threshold on the upper one; Seibert & Vis
2012, Sect. 2.3)::

    SUZ <- SUZ + R
    Pc   = min(PERC, SUZ);                SUZ <- SUZ - Pc,  SLZ <- SLZ + Pc
    Q0   = K0 * max(SUZ - UZL, 0)
    Q1   = K1 * SUZ
    if Q0 + Q1 > SUZ:                      # only possible when K0 + K1 > 1
        Q0 <- SUZ * Q0 / (Q0 + Q1);  Q1 <- SUZ - Q0
    SUZ <- SUZ - Q0 - Q1
    Q2   = K2 * SLZ;                       SLZ <- SLZ - Q2
    Qg   = Q0 + Q1 + Q2

The cap on ``Q0 + Q1`` keeps the explicit step well defined when ``K0 + K1 > 1`` (bounds do
not enforce ``K0 >= K1 >= K2``, nor ``K0 + K1 <= 1``): the upper zone is then emptied in one
day, in the proportions of the uncapped fluxes. ``K2 < 1`` within bounds, so ``Q2 <= SLZ``.

*Routing* (triangular weighting function; Seibert & Vis 2012, Sect. 2.4). The generated runoff
is spread over the following days with weights :math:`w_i` that are the areas, over day
:math:`i = 1, 2, \dots`, of an isosceles triangle of base MAXBAS days and unit area:

.. math::

    w_i = F(i) - F(i - 1), \qquad
    F(x) = \begin{cases} 2x^2 / B^2 & 0 \le x \le B/2 \\
                         1 - 2 (B - x)^2 / B^2 & B/2 < x \le B \\
                         1 & x > B \end{cases}

with :math:`B` = MAXBAS. The weights sum to 1 (to rounding) for any real MAXBAS in [1, 7] and
change continuously with it, so a non-integer MAXBAS is meaningful; MAXBAS = 1 is no delay
(``w = [1, 0, ...]``). Simulated flow is :math:`Q(t) = \sum_i w_i Q_g(t - i + 1)`. The routing
buffer (generated water not yet delivered at the outlet) is a storage of the water balance.

Water balance
-------------
Over any window, per member::

    input - ET - Q - (S_end - S_start) = 0     (to rounding)
    input = rain + SFCF * snowfall,  S = SP + WC + SM + SUZ + SLZ + routing buffer

:func:`simulate_basin` with ``return_states=True`` returns these terms for the reported window
(after the warm-up).

Initial states
--------------
No snow, no liquid water, soil moisture ``initial_soil_moisture * FC`` (0.5 by default), empty
upper and lower zones and routing buffer. Use a warm-up period (``warmup_days``, one year or
more) to make the results independent of that choice; the lower zone with a small K2 has the
longest memory (1 / K2 days).

Parameter bounds
----------------
The bounds of :data:`HBV_SPACE` are the ranges used by Beck et al. (2016) for their global
HBV calibration and regionalisation (MAXBAS [1, 7] days, as required by the 7-day routing
buffer of this implementation). The defaults are typical mid-range HBV-light values chosen for
lsegeo; they are not calibrated values.

References
----------
* Bergström, S. (1992). The HBV model - its structure and applications. SMHI Reports
  Hydrology 4, Norrköping.
* Bergström, S. (1995). The HBV model. In V. P. Singh (ed.), Computer Models of Watershed
  Hydrology, Water Resources Publications, 443-476.
* Lindström, G., Johansson, B., Persson, M., Gardelin, M., Bergström, S. (1997). Development and
  test of the distributed HBV-96 hydrological model. J. Hydrol. 201, 272-288,
  doi:10.1016/S0022-1694(97)00041-3.
* Seibert, J. (1997). Estimation of parameter uncertainty in the HBV model. Nordic Hydrology
  28(4-5), 247-262, doi:10.2166/nh.1998.15.
* Seibert, J., Vis, M. J. P. (2012). Teaching hydrological modeling with a user-friendly
  catchment-runoff-model software package. Hydrol. Earth Syst. Sci. 16, 3315-3325,
  doi:10.5194/hess-16-3315-2012.
* Beck, H. E., van Dijk, A. I. J. M., de Roo, A., Miralles, D. G., McVicar, T. R., Schellekens,
  J., Bruijnzeel, L. A. (2016). Global-scale regionalization of hydrologic model parameters.
  Water Resour. Res. 52, 3599-3622, doi:10.1002/2015WR018247.
"""

from __future__ import annotations

from collections.abc import Mapping

import numba
import numpy as np

from lsegeo.design import Parameter, ParameterSpace

__all__ = [
    "HBV_SPACE",
    "STATE_NAMES",
    "N_ROUTE",
    "HBVModel",
    "check_params",
    "triangular_weights",
    "hbv_kernel",
    "initial_states",
    "simulate_basin",
    "simulate_batch",
    "simulate_basin_numpy",
]

_BECK = ("Beck et al. (2016) WRR 52:3599-3622, doi:10.1002/2015WR018247, range of their HBV "
         "parameter table")

#: The HBV parameters, in the column order that every function of this module expects.
HBV_SPACE = ParameterSpace(
    parameters=(
        Parameter("TT", -2.5, 2.5, 0.0, "linear", "degC",
                  "threshold temperature: precipitation is snow below it, snow melts above it",
                  _BECK),
        Parameter("CFMAX", 0.5, 5.0, 3.0, "linear", "mm degC-1 day-1",
                  "degree-day factor of snowmelt", _BECK),
        Parameter("SFCF", 1.0, 1.5, 1.0, "linear", "1",
                  "snowfall correction factor (multiplies precipitation that falls as snow)", _BECK),
        Parameter("CFR", 0.0, 0.1, 0.05, "linear", "1",
                  "refreezing coefficient (refreezing = CFR * CFMAX * (TT - T))", _BECK),
        Parameter("CWH", 0.0, 0.2, 0.1, "linear", "1",
                  "water holding capacity of snow, as a fraction of the snowpack", _BECK),
        Parameter("FC", 50.0, 700.0, 250.0, "log", "mm",
                  "maximum soil moisture storage (field capacity)", _BECK),
        Parameter("LP", 0.3, 1.0, 0.7, "linear", "1",
                  "fraction of FC above which actual evapotranspiration equals the potential", _BECK),
        Parameter("BETA", 1.0, 6.0, 2.0, "linear", "1",
                  "shape coefficient of recharge: recharge = input * (SM / FC) ** BETA", _BECK),
        Parameter("PERC", 0.0, 6.0, 1.5, "linear", "mm day-1",
                  "maximum percolation from the upper to the lower zone", _BECK),
        Parameter("UZL", 0.0, 100.0, 20.0, "linear", "mm",
                  "upper-zone threshold above which the quick flow Q0 starts", _BECK),
        Parameter("K0", 0.05, 0.99, 0.25, "linear", "day-1",
                  "recession coefficient of the quick flow Q0 = K0 * max(SUZ - UZL, 0)", _BECK),
        Parameter("K1", 0.01, 0.8, 0.1, "linear", "day-1",
                  "recession coefficient of the upper zone Q1 = K1 * SUZ", _BECK),
        Parameter("K2", 0.001, 0.15, 0.02, "log", "day-1",
                  "recession coefficient of the lower zone Q2 = K2 * SLZ", _BECK),
        Parameter("MAXBAS", 1.0, 7.0, 2.5, "linear", "day",
                  "base length of the triangular routing weighting function (continuous)",
                  _BECK + "; upper bound 7 also the length of this implementation's routing buffer"),
    ),
    name="hbv",
)

# column indices in HBV_SPACE.names order
_TT, _CFMAX, _SFCF, _CFR, _CWH, _FC, _LP, _BETA, _PERC, _UZL, _K0, _K1, _K2, _MAXBAS = range(14)
N_PARAMS = 14
assert HBV_SPACE.names == ["TT", "CFMAX", "SFCF", "CFR", "CWH", "FC", "LP", "BETA", "PERC", "UZL",
                           "K0", "K1", "K2", "MAXBAS"]

#: number of routing weights (days), the largest MAXBAS rounded up
N_ROUTE = 7
#: rows of the state array: 5 storages, then the routing buffer (flow due 1..6 days later)
STATE_NAMES = ("snow", "liquid", "soil", "upper", "lower") + tuple(f"route{i}" for i in range(1, N_ROUTE))
N_STATE = len(STATE_NAMES)
#: rows of the totals array
TOTAL_NAMES = ("input", "et", "runoff")


# ---------------------------------------------------------------------------------------------
# parameters and routing weights


def check_params(params: np.ndarray) -> np.ndarray:
    """Validate a parameter array and return it as a C-contiguous float64 ``(members, 14)`` array.

    The model is well defined for any parameters that pass this check, inside the bounds of
    :data:`HBV_SPACE` or not: finite values, ``CFMAX, SFCF, CFR, CWH, BETA, PERC, UZL >= 0``,
    ``FC > 0``, ``0 < LP``, ``0 <= K0, K1`` (any size: the upper-zone outflow is capped),
    ``0 <= K2 <= 1`` and ``1 <= MAXBAS <= 7``.

    Parameters
    ----------
    params : array_like
        ``(members, 14)`` or ``(14,)`` (one member), columns in ``HBV_SPACE.names`` order.

    Raises
    ------
    ValueError
        Wrong shape, or a value outside the domain above (the message names the parameter).
    """
    p = np.asarray(params, dtype=np.float64)
    if p.ndim == 1:
        p = p[None, :]
    if p.ndim != 2 or p.shape[1] != N_PARAMS:
        raise ValueError(f"HBV parameters must be (members, {N_PARAMS}) with columns {HBV_SPACE.names}, "
                         f"got shape {np.shape(params)}")
    if p.shape[0] == 0:
        raise ValueError("HBV parameters have no members")
    names = HBV_SPACE.names
    bad = ~np.isfinite(p)
    if bad.any():
        raise ValueError(f"HBV parameter {names[np.argwhere(bad)[0][1]]} is not finite")
    rules = {
        _CFMAX: (0.0, np.inf), _SFCF: (0.0, np.inf), _CFR: (0.0, np.inf), _CWH: (0.0, np.inf),
        _BETA: (0.0, np.inf), _PERC: (0.0, np.inf), _UZL: (0.0, np.inf), _K0: (0.0, np.inf),
        _K1: (0.0, np.inf), _K2: (0.0, 1.0), _MAXBAS: (1.0, float(N_ROUTE)),
    }
    for j, (lo, hi) in rules.items():
        col = p[:, j]
        if (col < lo).any() or (col > hi).any():
            v = col[(col < lo) | (col > hi)][0]
            raise ValueError(f"HBV parameter {names[j]} = {v} is outside its valid domain [{lo}, {hi}]")
    for j in (_FC, _LP):
        if (p[:, j] <= 0).any():
            raise ValueError(f"HBV parameter {names[j]} = {p[:, j].min()} must be > 0")
    return np.ascontiguousarray(p)


def _triangle_cdf_numpy(x: float, b: np.ndarray) -> np.ndarray:
    """F(x) of the unit-area isosceles triangle on [0, b] (see the module docstring)."""
    bb = b * b
    r = b - x
    rising = 2.0 * x * x / bb
    falling = 1.0 - 2.0 * r * r / bb
    out = np.where(x <= 0.5 * b, rising, falling)
    out = np.where(x >= b, 1.0, out)
    return np.where(x <= 0.0, 0.0, out)


def triangular_weights(maxbas) -> np.ndarray:
    """Routing weights of the continuous triangular weighting function.

    Parameters
    ----------
    maxbas : float or array_like
        Base length(s) of the triangle, in days, within [1, 7].

    Returns
    -------
    numpy.ndarray
        ``(..., 7)`` weights: element ``i`` is the fraction of one day's generated runoff that
        reaches the outlet ``i`` days later. They sum to 1 (to rounding).
    """
    b = np.asarray(maxbas, dtype=np.float64)
    if np.any(~np.isfinite(b)) or np.any(b < 1.0) or np.any(b > N_ROUTE):
        raise ValueError(f"MAXBAS must be within [1, {N_ROUTE}], got {maxbas}")
    cdf = [_triangle_cdf_numpy(float(i), b) for i in range(N_ROUTE + 1)]
    return np.stack([cdf[i + 1] - cdf[i] for i in range(N_ROUTE)], axis=-1)


@numba.njit(cache=True, fastmath=False)
def _triangle_cdf(x, b):
    if x <= 0.0:
        return 0.0
    if x >= b:
        return 1.0
    bb = b * b
    if x <= 0.5 * b:
        return 2.0 * x * x / bb
    r = b - x
    return 1.0 - 2.0 * r * r / bb


# ---------------------------------------------------------------------------------------------
# the numba kernel


@numba.njit(cache=True, fastmath=False)
def hbv_kernel(prcp, temp, pet, params, states, q, totals):
    """Run the HBV model for the members of one basin (numba; time outer, members inner).

    Parameters
    ----------
    prcp, temp, pet : numpy.ndarray
        ``(T,)`` float64 precipitation (mm d-1), mean air temperature (degC) and potential
        evapotranspiration (mm d-1). No NaN (not checked here; see :func:`simulate_basin`).
    params : numpy.ndarray
        ``(M, 14)`` float64, columns in ``HBV_SPACE.names`` order, valid per
        :func:`check_params` (not checked here).
    states : numpy.ndarray
        ``(11, M)`` float64, rows :data:`STATE_NAMES`; the initial states on entry, the final
        states on return (updated in place).
    q : numpy.ndarray
        ``(M, T)`` float64 or float32, written: simulated streamflow (mm d-1).
    totals : numpy.ndarray
        ``(3, M)`` float64, rows ``input`` (rain + SFCF * snowfall), ``et`` (actual
        evapotranspiration) and ``runoff`` (routed flow), each summed over the ``T`` days and
        *added* to what the array holds on entry.

    Notes
    -----
    The member loop is innermost and runs over contiguous ``(M,)`` arrays; nothing is allocated
    inside the time loop. Per-member constants (parameter columns, ``CFR * CFMAX``, ``LP * FC``
    and the routing weights) are computed once before it.
    """
    n_t = prcp.shape[0]
    n_m = params.shape[0]
    # per-member constants, as contiguous arrays
    tt = np.ascontiguousarray(params[:, 0])
    cfmax = np.ascontiguousarray(params[:, 1])
    sfcf = np.ascontiguousarray(params[:, 2])
    cwh = np.ascontiguousarray(params[:, 4])
    fc = np.ascontiguousarray(params[:, 5])
    beta = np.ascontiguousarray(params[:, 7])
    perc = np.ascontiguousarray(params[:, 8])
    uzl = np.ascontiguousarray(params[:, 9])
    k0 = np.ascontiguousarray(params[:, 10])
    k1 = np.ascontiguousarray(params[:, 11])
    k2 = np.ascontiguousarray(params[:, 12])
    cfrmax = np.empty(n_m)
    lpfc = np.empty(n_m)
    w = np.empty((N_ROUTE, n_m))
    for m in range(n_m):
        cfrmax[m] = params[m, 3] * params[m, 1]
        lpfc[m] = params[m, 6] * params[m, 5]
        b = params[m, 13]
        lo = 0.0
        for i in range(N_ROUTE):
            hi = _triangle_cdf(float(i + 1), b)
            w[i, m] = hi - lo
            lo = hi
    w0, w1, w2, w3, w4, w5, w6 = w[0], w[1], w[2], w[3], w[4], w[5], w[6]
    sp, wc, sm, suz, slz = states[0], states[1], states[2], states[3], states[4]
    b1, b2, b3, b4, b5, b6 = states[5], states[6], states[7], states[8], states[9], states[10]
    tin, tet, tq = totals[0], totals[1], totals[2]

    for t in range(n_t):
        p = prcp[t]
        tc = temp[t]
        ep = pet[t]
        if ep < 0.0:
            ep = 0.0
        for m in range(n_m):
            # snow
            if tc < tt[m]:
                snow = p * sfcf[m]
                rain = 0.0
            else:
                snow = 0.0
                rain = p
            s_p = sp[m] + snow
            melt = min(max(cfmax[m] * (tc - tt[m]), 0.0), s_p)
            s_p = s_p - melt
            w_c = wc[m] + (rain + melt)
            refr = min(max(cfrmax[m] * (tt[m] - tc), 0.0), w_c)
            s_p = s_p + refr
            w_c = w_c - refr
            inp = max(w_c - cwh[m] * s_p, 0.0)
            w_c = w_c - inp
            sp[m] = s_p
            wc[m] = w_c
            # soil
            s_m = sm[m]
            rch = 0.0
            if inp > 0.0:
                rch = inp * (s_m / fc[m]) ** beta[m]
            s_m = s_m + (inp - rch)
            excess = max(s_m - fc[m], 0.0)
            s_m = s_m - excess
            rch = rch + excess
            et = min(ep * min(s_m / lpfc[m], 1.0), s_m)
            s_m = s_m - et
            sm[m] = s_m
            # response
            s_u = suz[m] + rch
            pc = min(perc[m], s_u)
            s_u = s_u - pc
            s_l = slz[m] + pc
            q0 = k0[m] * max(s_u - uzl[m], 0.0)
            q1 = k1[m] * s_u
            qs = q0 + q1
            if qs > s_u:
                q0 = s_u * (q0 / qs)
                q1 = s_u - q0
                s_u = 0.0
            else:
                s_u = s_u - qs
            q2 = k2[m] * s_l
            s_l = s_l - q2
            suz[m] = s_u
            slz[m] = s_l
            qg = q0 + q1 + q2
            # routing
            qo = b1[m] + w0[m] * qg
            b1[m] = b2[m] + w1[m] * qg
            b2[m] = b3[m] + w2[m] * qg
            b3[m] = b4[m] + w3[m] * qg
            b4[m] = b5[m] + w4[m] * qg
            b5[m] = b6[m] + w5[m] * qg
            b6[m] = w6[m] * qg
            q[m, t] = qo
            tin[m] += rain + snow
            tet[m] += et
            tq[m] += qo


# ---------------------------------------------------------------------------------------------
# public drivers


def initial_states(params: np.ndarray, initial_soil_moisture: float = 0.5) -> np.ndarray:
    """The initial state array ``(11, members)``: soil at ``initial_soil_moisture * FC``, the rest 0.

    Parameters
    ----------
    params : numpy.ndarray
        ``(members, 14)`` parameters (validated by :func:`check_params`).
    initial_soil_moisture : float
        Initial soil moisture as a fraction of FC, in [0, 1].
    """
    if not 0.0 <= initial_soil_moisture <= 1.0:
        raise ValueError(f"initial_soil_moisture must be a fraction of FC in [0, 1], got {initial_soil_moisture}")
    p = check_params(params)
    s = np.zeros((N_STATE, p.shape[0]))
    s[2] = initial_soil_moisture * p[:, _FC]
    return s


def _forcing(prcp, tmax, tmin, pet, warmup_days: int):
    """Check and convert one basin's forcing; returns float64 prcp, temp, pet."""
    arrays = {}
    n = None
    for name, a in (("prcp", prcp), ("tmax", tmax), ("tmin", tmin), ("pet", pet)):
        a = np.asarray(a, dtype=np.float64)
        if a.ndim != 1:
            raise ValueError(f"forcing {name} must be a (time,) array, got shape {a.shape}")
        if n is None:
            n = a.shape[0]
        elif a.shape[0] != n:
            raise ValueError(f"forcing {name} has {a.shape[0]} days, prcp has {n}")
        nan = np.isnan(a)
        if nan.any():
            raise ValueError(f"forcing {name} has {int(nan.sum())} NaN value(s) in the simulated window "
                             f"(first at index {int(np.argmax(nan))}); fill or shorten the period")
        arrays[name] = a
    if (arrays["prcp"] < 0).any():
        raise ValueError(f"forcing prcp has negative values (min {arrays['prcp'].min()})")
    if not 0 <= warmup_days < n:
        raise ValueError(f"warmup_days must be in [0, {n}) for a {n}-day series, got {warmup_days}")
    temp = 0.5 * (arrays["tmax"] + arrays["tmin"])
    return np.ascontiguousarray(arrays["prcp"]), temp, np.ascontiguousarray(arrays["pet"])


def _balance(states_start: np.ndarray, states_end: np.ndarray, totals: np.ndarray) -> dict[str, np.ndarray]:
    s0 = states_start.sum(axis=0)
    s1 = states_end.sum(axis=0)
    out = {"input": totals[0].copy(), "et": totals[1].copy(), "runoff": totals[2].copy()}
    for i, name in enumerate(STATE_NAMES[:5]):
        out[name] = states_end[i].copy()
    out["routing"] = states_end[5:].sum(axis=0)
    out["storage_start"] = s0
    out["storage_end"] = s1
    out["balance_error"] = totals[0] - totals[1] - totals[2] - (s1 - s0)
    return out


def simulate_basin(prcp, tmax, tmin, pet, params, warmup_days: int = 0, return_states: bool = False,
                   initial_soil_moisture: float = 0.5, dtype=np.float64):
    """Simulate the streamflow of one basin for many parameter sets (numba kernel).

    Parameters
    ----------
    prcp, tmax, tmin, pet : array_like
        ``(time,)`` daily precipitation (mm d-1), maximum and minimum air temperature (degC) and
        potential evapotranspiration (mm d-1), warm-up included. Temperature is the mean of tmax
        and tmin. Negative PET is taken as 0.
    params : array_like
        ``(members, 14)`` (or ``(14,)``) parameters, columns in ``HBV_SPACE.names`` order.
    warmup_days : int
        Days at the start that are simulated but not returned; the water balance terms cover
        the days after them only.
    return_states : bool
        Also return the water balance terms.
    initial_soil_moisture : float
        Initial soil moisture as a fraction of FC.
    dtype : numpy dtype
        float64 (default) or float32 for the returned flow; the states are always float64.

    Returns
    -------
    q : numpy.ndarray
        ``(members, time - warmup_days)`` simulated streamflow, mm d-1.
    balance : dict of str to numpy.ndarray, only with ``return_states``
        ``(members,)`` arrays over the reported window: ``input`` (rain + SFCF * snowfall),
        ``et``, ``runoff`` (sum of ``q``), the final storages ``snow``, ``liquid``, ``soil``,
        ``upper``, ``lower``, ``routing``, the total storage ``storage_start`` and
        ``storage_end``, and ``balance_error = input - et - runoff - (storage_end -
        storage_start)``, which is 0 to rounding.

    Raises
    ------
    ValueError
        A forcing value is NaN (the message names the variable), shapes disagree, or a
        parameter is outside its valid domain (see :func:`check_params`).
    """
    p = check_params(params)
    pr, temp, ep = _forcing(prcp, tmax, tmin, pet, warmup_days)
    states = initial_states(p, initial_soil_moisture)
    n_m, n_t = p.shape[0], pr.shape[0]
    totals = np.zeros((3, n_m))
    if warmup_days:
        scratch = np.empty((n_m, warmup_days), dtype=dtype)
        hbv_kernel(pr[:warmup_days], temp[:warmup_days], ep[:warmup_days], p, states, scratch, totals)
        totals[:] = 0.0
    start = states.copy()
    q = np.empty((n_m, n_t - warmup_days), dtype=dtype)
    hbv_kernel(pr[warmup_days:], temp[warmup_days:], ep[warmup_days:], p, states, q, totals)
    if return_states:
        return q, _balance(start, states, totals)
    return q


def simulate_batch(prcp, tmax, tmin, pet, params, warmup_days: int = 0, initial_soil_moisture: float = 0.5,
                   dtype=np.float64) -> np.ndarray:
    """Simulate many basins, each with its own members, by looping the kernel over basins.

    Parameters
    ----------
    prcp, tmax, tmin, pet : array_like
        ``(basins, time)`` forcing, as in :func:`simulate_basin`.
    params : array_like
        ``(basins, members, 14)`` parameters, or ``(members, 14)`` for the same members in every
        basin.
    warmup_days, initial_soil_moisture, dtype
        As in :func:`simulate_basin`.

    Returns
    -------
    numpy.ndarray
        ``(basins, members, time - warmup_days)`` simulated streamflow, mm d-1.
    """
    pr = np.asarray(prcp)
    if pr.ndim != 2:
        raise ValueError(f"prcp must be (basins, time), got shape {pr.shape}")
    n_b, n_t = pr.shape
    par = np.asarray(params, dtype=np.float64)
    if par.ndim == 2:
        par = np.broadcast_to(par, (n_b, *par.shape))
    if par.ndim != 3 or par.shape[0] != n_b:
        raise ValueError(f"params must be (basins={n_b}, members, {N_PARAMS}) or (members, {N_PARAMS}), "
                         f"got shape {np.shape(params)}")
    fields = {"tmax": np.asarray(tmax), "tmin": np.asarray(tmin), "pet": np.asarray(pet)}
    for name, a in fields.items():
        if a.shape != pr.shape:
            raise ValueError(f"{name} has shape {a.shape}, prcp has {pr.shape}")
    out = np.empty((n_b, par.shape[1], n_t - warmup_days), dtype=dtype)
    for b in range(n_b):
        try:
            p = check_params(par[b])
            f = _forcing(pr[b], fields["tmax"][b], fields["tmin"][b], fields["pet"][b], warmup_days)
        except ValueError as e:
            raise ValueError(f"basin index {b}: {e}") from None
        states = initial_states(p, initial_soil_moisture)
        totals = np.zeros((3, p.shape[0]))
        if warmup_days:
            scratch = np.empty((p.shape[0], warmup_days), dtype=dtype)
            hbv_kernel(f[0][:warmup_days], f[1][:warmup_days], f[2][:warmup_days], p, states, scratch, totals)
        hbv_kernel(f[0][warmup_days:], f[1][warmup_days:], f[2][warmup_days:], p, states, out[b], totals)
    return out


# ---------------------------------------------------------------------------------------------
# numpy reference


def simulate_basin_numpy(prcp, tmax, tmin, pet, params, warmup_days: int = 0, return_states: bool = False,
                         initial_soil_moisture: float = 0.5):
    """Reference implementation of :func:`simulate_basin` in plain numpy.

    The same equations, in the same floating-point order, with a Python loop over time and
    numpy operations over members. It exists to check the numba kernel and to measure its
    speed-up; it is much slower. Same parameters and returns as :func:`simulate_basin`.
    """
    p = check_params(params)
    pr, temp, pet_ = _forcing(prcp, tmax, tmin, pet, warmup_days)
    n_m, n_t = p.shape[0], pr.shape[0]
    s0 = initial_states(p, initial_soil_moisture)
    sp, wc, sm, suz, slz = (s0[i].copy() for i in range(5))
    buf = np.zeros((N_ROUTE - 1, n_m))
    tt, cfmax, sfcf, cfr, cwh, fc, lp, beta, perc, uzl, k0, k1, k2, maxbas = p.T
    cfrmax = cfr * cfmax
    lpfc = lp * fc
    w = triangular_weights(maxbas).T  # (7, M)
    q = np.empty((n_m, n_t - warmup_days))
    totals = np.zeros((3, n_m))
    start = None
    zero = np.zeros(n_m)
    for t in range(n_t):
        if t == warmup_days:
            start = np.vstack([sp, wc, sm, suz, slz, buf])
            totals[:] = 0.0
        pt, tc, ep = pr[t], temp[t], max(pet_[t], 0.0)
        is_snow = tc < tt
        snow = np.where(is_snow, pt * sfcf, 0.0)
        rain = np.where(is_snow, 0.0, pt)
        sp = sp + snow
        melt = np.minimum(np.maximum(cfmax * (tc - tt), 0.0), sp)
        sp = sp - melt
        wc = wc + (rain + melt)
        refr = np.minimum(np.maximum(cfrmax * (tt - tc), 0.0), wc)
        sp = sp + refr
        wc = wc - refr
        inp = np.maximum(wc - cwh * sp, 0.0)
        wc = wc - inp
        rch = np.where(inp > 0.0, inp * (sm / fc) ** beta, 0.0)
        sm = sm + (inp - rch)
        excess = np.maximum(sm - fc, 0.0)
        sm = sm - excess
        rch = rch + excess
        et = np.minimum(ep * np.minimum(sm / lpfc, 1.0), sm)
        sm = sm - et
        suz = suz + rch
        pc = np.minimum(perc, suz)
        suz = suz - pc
        slz = slz + pc
        q0 = k0 * np.maximum(suz - uzl, 0.0)
        q1 = k1 * suz
        qs = q0 + q1
        over = qs > suz
        frac = np.divide(q0, qs, out=np.zeros(n_m), where=over)
        q0 = np.where(over, suz * frac, q0)
        q1 = np.where(over, suz - q0, q1)
        suz = np.where(over, zero, suz - qs)
        q2 = k2 * slz
        slz = slz - q2
        qg = q0 + q1 + q2
        qo = buf[0] + w[0] * qg
        for i in range(N_ROUTE - 2):
            buf[i] = buf[i + 1] + w[i + 1] * qg
        buf[N_ROUTE - 2] = w[N_ROUTE - 1] * qg
        if t >= warmup_days:
            q[:, t - warmup_days] = qo
            totals[0] += rain + snow
            totals[1] += et
            totals[2] += qo
    if return_states:
        end = np.vstack([sp, wc, sm, suz, slz, buf])
        return q, _balance(start, end, totals)
    return q


# ---------------------------------------------------------------------------------------------
# adapter


class HBVModel:
    """The :class:`~lsegeo.models.protocol.ModelAdapter` of the embedded HBV model.

    Parameters
    ----------
    initial_soil_moisture : float
        Initial soil moisture as a fraction of FC (see :func:`simulate_basin`).
    """

    name = "hbv"
    space = HBV_SPACE
    forcing_variables = ("prcp", "tmax", "tmin", "pet")

    def __init__(self, initial_soil_moisture: float = 0.5) -> None:
        self.initial_soil_moisture = initial_soil_moisture

    def run(self, forcing: Mapping[str, np.ndarray], params: np.ndarray) -> np.ndarray:
        """Run the members of one basin; ``(members, time)`` mm d-1, warm-up days included."""
        missing = [v for v in self.forcing_variables if v not in forcing]
        if missing:
            raise KeyError(f"HBV needs forcing variables {missing}; got {sorted(forcing)}")
        return simulate_basin(forcing["prcp"], forcing["tmax"], forcing["tmin"], forcing["pet"], params,
                              initial_soil_moisture=self.initial_soil_moisture)
