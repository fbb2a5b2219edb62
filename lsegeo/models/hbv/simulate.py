"""Drivers of the HBV kernel: checked inputs, spin-up, one basin or many, the water balance.

:func:`simulate_basin` and :func:`simulate_batch` check the forcing and the parameters and run
the numba kernel of :mod:`lsegeo.models.hbv.kernel` (warm-up first, its flow discarded);
:func:`prepare_forcing` and :func:`simulate_prepared` split the checks from the run, so that a
caller that runs the same basin many times (the adapter's batch runner, used by direct
calibration) checks and converts the forcing once.
"""

from __future__ import annotations

import numpy as np

from lsegeo.models.hbv.kernel import N_PARAMS, STATE_NAMES, check_params, hbv_kernel, initial_states

__all__ = ["prepare_forcing", "water_balance", "simulate_prepared", "simulate_basin", "simulate_batch"]


def prepare_forcing(prcp, tmax, tmin, pet, warmup_days: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Check one basin's forcing and convert it to what :func:`simulate_prepared` reads.

    Parameters
    ----------
    prcp, tmax, tmin, pet : array_like
        ``(time,)`` daily precipitation (mm d-1), maximum and minimum air temperature (degC) and
        potential evapotranspiration (mm d-1), warm-up included.
    warmup_days : int
        Days at the start that will be simulated but not returned; must leave at least one day.

    Returns
    -------
    (prcp, temp, pet) : tuple of numpy.ndarray
        ``(time,)`` C-contiguous float64 arrays; ``temp`` is the mean of ``tmax`` and ``tmin``.

    Raises
    ------
    ValueError
        A variable is not ``(time,)``, the lengths differ, a value is NaN (the message names the
        variable and the first bad day), precipitation is negative, or ``warmup_days`` is not in
        ``[0, time)``.
    """
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


def water_balance(states_start: np.ndarray, states_end: np.ndarray, totals: np.ndarray) -> dict[str, np.ndarray]:
    """The water balance terms of a run from its start and end states and its totals.

    Parameters
    ----------
    states_start, states_end : numpy.ndarray
        ``(11, members)`` states (rows :data:`STATE_NAMES`) at the start and the end of the window.
    totals : numpy.ndarray
        ``(3, members)`` sums over the window of ``input``, ``et`` and ``runoff`` (mm).

    Returns
    -------
    dict of str to numpy.ndarray
        ``(members,)`` arrays in mm: see :func:`simulate_basin`.
    """
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


def simulate_prepared(forcing: tuple[np.ndarray, np.ndarray, np.ndarray], params: np.ndarray,
                      warmup_days: int = 0, initial_soil_moisture: float = 0.5, dtype=np.float64,
                      return_states: bool = False, out: np.ndarray | None = None):
    """Simulate one basin from forcing already checked by :func:`prepare_forcing`.

    The spin-up states are built here for every call, since they depend on the parameters:
    the warm-up days run first (their flow is discarded), then the reported days.

    Parameters
    ----------
    forcing : (prcp, temp, pet)
        The output of :func:`prepare_forcing`, ``(time,)`` each.
    params : numpy.ndarray
        ``(members, 14)`` parameters, already validated by :func:`check_params`.
    warmup_days : int
        Days simulated before the reported ones, in ``[0, time)``.
    initial_soil_moisture : float
        Initial soil moisture as a fraction of FC, in [0, 1].
    dtype : numpy dtype
        float64 or float32 for the returned flow.
    return_states : bool
        Also return the water balance terms of the reported days (:func:`water_balance`).
    out : numpy.ndarray, optional
        ``(members, time - warmup_days)`` array of ``dtype`` to write the flow into.

    Returns
    -------
    q : numpy.ndarray
        ``(members, time - warmup_days)`` simulated streamflow, mm d-1.
    balance : dict, only with ``return_states``
    """
    pr, temp, ep = forcing
    states = initial_states(params, initial_soil_moisture)
    n_m, n_t = params.shape[0], pr.shape[0]
    totals = np.zeros((3, n_m))
    if warmup_days:
        scratch = np.empty((n_m, warmup_days), dtype=dtype)
        hbv_kernel(pr[:warmup_days], temp[:warmup_days], ep[:warmup_days], params, states, scratch, totals)
        totals[:] = 0.0
    start = states.copy() if return_states else None
    q = np.empty((n_m, n_t - warmup_days), dtype=dtype) if out is None else out
    hbv_kernel(pr[warmup_days:], temp[warmup_days:], ep[warmup_days:], params, states, q, totals)
    if return_states:
        return q, water_balance(start, states, totals)
    return q


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
        ``(members, 14)`` (or ``(14,)``) parameters, columns in ``PARAM_NAMES`` order.
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
    f = prepare_forcing(prcp, tmax, tmin, pet, warmup_days)
    return simulate_prepared(f, p, warmup_days, initial_soil_moisture, dtype, return_states)


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

    Raises
    ------
    ValueError
        Shapes disagree, or a basin's forcing or parameters are invalid (the message starts
        with the basin's index).
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
            f = prepare_forcing(pr[b], fields["tmax"][b], fields["tmin"][b], fields["pet"][b], warmup_days)
        except ValueError as e:
            raise ValueError(f"basin index {b}: {e}") from None
        simulate_prepared(f, p, warmup_days, initial_soil_moisture, dtype, out=out[b])
    return out
