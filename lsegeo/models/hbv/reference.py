"""A plain numpy version of the HBV equations, the reference that checks the numba kernel.

The equations of :mod:`lsegeo.models.hbv.kernel`, in the same floating-point order, with a
Python loop over days and numpy operations over members. ``tests/test_hbv.py`` checks that the
kernel equals it to 1e-10 and ``benchmarks/bench_model.py`` measures the kernel's speed-up over it.
"""

from __future__ import annotations

import numpy as np

from lsegeo.models.hbv.kernel import N_ROUTE, check_params, initial_states, triangular_weights
from lsegeo.models.hbv.simulate import prepare_forcing, water_balance

__all__ = ["simulate_basin_numpy"]


def simulate_basin_numpy(prcp, tmax, tmin, pet, params, warmup_days: int = 0, return_states: bool = False,
                         initial_soil_moisture: float = 0.5):
    """Reference implementation of :func:`~lsegeo.models.hbv.simulate.simulate_basin` in numpy.

    The same equations, in the same floating-point order, with a Python loop over time and
    numpy operations over members. It exists to check the numba kernel and to measure its
    speed-up; it is much slower. Same parameters and returns as :func:`~lsegeo.models.hbv.simulate.simulate_basin`.
    """
    p = check_params(params)
    pr, temp, pet_ = prepare_forcing(prcp, tmax, tmin, pet, warmup_days)
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
        return q, water_balance(start, end, totals)
    return q
