r"""The HBV model's numba kernel: the equations, the states and the routing weights.

The embedded default process model of lsegeo is a conceptual rainfall-runoff model of the HBV
family. This module holds its arithmetic; :mod:`lsegeo.models.hbv.simulate` the drivers that
check the inputs and run the kernel for one or many basins, :mod:`lsegeo.models.hbv.adapter`
the parameter space and the adapter that the rest of lsegeo calls, and
:mod:`lsegeo.models.hbv.reference` a plain numpy version of the same equations that checks this
one.

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
balance (reported as ``"input"`` by :func:`~lsegeo.models.hbv.simulate.simulate_basin`).

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

:func:`~lsegeo.models.hbv.simulate.simulate_basin` with ``return_states=True`` returns these terms for
the reported window (after the warm-up).

Initial states
--------------
No snow, no liquid water, soil moisture ``initial_soil_moisture * FC`` (0.5 by default), empty
upper and lower zones and routing buffer. Use a warm-up period (``warmup_days``, one year or
more) to make the results independent of that choice; the lower zone with a small K2 has the
longest memory (1 / K2 days).

Parameters
----------
Every function takes parameters as a ``(members, 14)`` float64 array whose columns are
:data:`PARAM_NAMES`; their bounds and defaults are those of
:data:`lsegeo.models.hbv.adapter.HBV_SPACE`.

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
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = [
    "PARAM_NAMES",
    "N_PARAMS",
    "STATE_NAMES",
    "N_ROUTE",
    "check_params",
    "triangular_weights",
    "hbv_kernel",
    "initial_states",
]

#: The HBV parameters, in the column order that every function of this module expects.
PARAM_NAMES = ("TT", "CFMAX", "SFCF", "CFR", "CWH", "FC", "LP", "BETA", "PERC", "UZL", "K0", "K1", "K2",
               "MAXBAS")
# column indices in PARAM_NAMES order
_TT, _CFMAX, _SFCF, _CFR, _CWH, _FC, _LP, _BETA, _PERC, _UZL, _K0, _K1, _K2, _MAXBAS = range(14)
N_PARAMS = len(PARAM_NAMES)

#: number of routing weights (days), the largest MAXBAS rounded up
N_ROUTE = 7
#: rows of the state array: 5 storages, then the routing buffer (flow due 1..6 days later)
STATE_NAMES = ("snow", "liquid", "soil", "upper", "lower") + tuple(f"route{i}" for i in range(1, N_ROUTE))
N_STATE = len(STATE_NAMES)
#: rows of the totals array
TOTAL_NAMES = ("input", "et", "runoff")


# ---------------------------------------------------------------------------------------------
# parameters and routing weights


@numba.njit(cache=True)
def _in_domain(p):
    """Whether every member of ``p`` (``(M, 14)``) passes :func:`check_params` (one pass, no messages)."""
    for m in range(p.shape[0]):
        for j in range(p.shape[1]):
            if not np.isfinite(p[m, j]):
                return False
        for j in (_CFMAX, _SFCF, _CFR, _CWH, _BETA, _PERC, _UZL, _K0, _K1):
            if p[m, j] < 0.0:
                return False
        if p[m, _K2] < 0.0 or p[m, _K2] > 1.0 or p[m, _MAXBAS] < 1.0 or p[m, _MAXBAS] > N_ROUTE:
            return False
        if p[m, _FC] <= 0.0 or p[m, _LP] <= 0.0:
            return False
    return True


def check_params(params: np.ndarray) -> np.ndarray:
    """Validate a parameter array and return it as a C-contiguous float64 ``(members, 14)`` array.

    The model is well defined for any parameters that pass this check, inside the bounds of
    :data:`~lsegeo.models.hbv.adapter.HBV_SPACE` or not: finite values,
    ``CFMAX, SFCF, CFR, CWH, BETA, PERC, UZL >= 0``, ``FC > 0``, ``0 < LP``, ``0 <= K0, K1`` (any
    size: the upper-zone outflow is capped), ``0 <= K2 <= 1`` and ``1 <= MAXBAS <= 7``.

    Parameters
    ----------
    params : array_like
        ``(members, 14)`` or ``(14,)`` (one member), columns in ``PARAM_NAMES`` order.

    Raises
    ------
    ValueError
        Wrong shape, or a value outside the domain above (the message names the parameter).
    """
    p = np.asarray(params, dtype=np.float64)
    if p.ndim == 1:
        p = p[None, :]
    if p.ndim != 2 or p.shape[1] != N_PARAMS:
        raise ValueError(f"HBV parameters must be (members, {N_PARAMS}) with columns {list(PARAM_NAMES)}, "
                         f"got shape {np.shape(params)}")
    if p.shape[0] == 0:
        raise ValueError("HBV parameters have no members")
    if _in_domain(p):  # the common case, checked in one pass
        return np.ascontiguousarray(p)
    names = PARAM_NAMES
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
        evapotranspiration (mm d-1). No NaN (not checked here; see
        :func:`lsegeo.models.hbv.simulate.prepare_forcing`).
    params : numpy.ndarray
        ``(M, 14)`` float64, columns in ``PARAM_NAMES`` order, valid per
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
# states


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
