"""The adapter of the embedded HBV model: its parameter space and its batch runner.

:class:`HBVModel` is the :class:`~lsegeo.models.protocol.ModelAdapter` registered as ``"hbv"``
(:func:`lsegeo.models.registry.get_model`); :class:`HBVRunner` is its batch runner, which checks
and converts a basin's forcing once and then runs any number of batches of members through the
numba kernel (:mod:`lsegeo.models.hbv.kernel`), the warm-up first.

Parameter bounds
----------------
The bounds of :data:`HBV_SPACE` are the ranges used by Beck et al. (2016) for their global HBV
calibration and regionalisation (MAXBAS [1, 7] days, as required by the 7-day routing buffer of
the kernel). The defaults are typical mid-range HBV-light values chosen for lsegeo; they are not
calibrated values. FC and K2 are sampled on a log scale.

References
----------
Beck, H. E., van Dijk, A. I. J. M., de Roo, A., Miralles, D. G., McVicar, T. R., Schellekens, J.
and Bruijnzeel, L. A. (2016). Global-scale regionalization of hydrologic model parameters.
*Water Resour. Res.* 52, 3599-3622. doi:10.1002/2015WR018247
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from lsegeo.design import Parameter, ParameterSpace
from lsegeo.models.hbv.kernel import N_PARAMS, PARAM_NAMES, check_params
from lsegeo.models.hbv.simulate import prepare_forcing, simulate_prepared
from lsegeo.models.protocol import CompletedRun

__all__ = ["HBV_SPACE", "HBVModel", "HBVRunner"]

_BECK = ("Beck et al. (2016) WRR 52:3599-3622, doi:10.1002/2015WR018247, range of their HBV "
         "parameter table")

#: The HBV parameters: bounds, defaults, scales, in the kernel's column order (``PARAM_NAMES``).
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

if tuple(HBV_SPACE.names) != PARAM_NAMES:  # the space must list the kernel's columns in its order
    raise ImportError(f"HBV_SPACE names {HBV_SPACE.names} differ from the kernel's {PARAM_NAMES}")

FORCING_VARIABLES = ("prcp", "tmax", "tmin", "pet")


class HBVRunner:
    """The batch runner of the HBV model for one basin, or for several at once.

    The forcing is checked and converted once (:func:`~lsegeo.models.hbv.simulate.prepare_forcing`);
    each batch then validates its parameters (:func:`~lsegeo.models.hbv.kernel.check_params`)
    and runs the kernel from the initial states, warm-up first: the spin-up depends on the
    parameters, so it is part of every batch.

    Parameters
    ----------
    forcing : mapping of str to array_like
        ``prcp``, ``tmax``, ``tmin`` and ``pet``: ``(time,)`` for one basin or ``(basins, time)``
        for several; precipitation and PET in mm day-1, temperatures in degC.
    warmup_days : int
        Days at the start that are simulated but not returned, in ``[0, time)``.
    initial_soil_moisture : float
        Initial soil moisture as a fraction of FC, in [0, 1].
    dtype : numpy dtype
        float64 (default) or float32 for the returned flow.

    Attributes
    ----------
    days : int
        ``time - warmup_days``, the length of the returned flow.
    basins : int or None
        The number of basins of a many-basin runner, None for a one-basin runner.

    Raises
    ------
    KeyError
        A forcing variable is missing.
    ValueError
        The forcing has the wrong shape, NaN or negative precipitation (the message names the
        variable, and the basin's index for a many-basin runner).
    """

    def __init__(self, forcing: Mapping[str, np.ndarray], *, warmup_days: int = 0,
                 initial_soil_moisture: float = 0.5, dtype=np.float64) -> None:
        missing = [v for v in FORCING_VARIABLES if v not in forcing]
        if missing:
            raise KeyError(f"HBV needs forcing variables {missing}; got {sorted(forcing)}")
        if not 0.0 <= initial_soil_moisture <= 1.0:
            raise ValueError(f"initial_soil_moisture must be a fraction of FC in [0, 1], got {initial_soil_moisture}")
        arrays = [np.asarray(forcing[v], dtype=np.float64) for v in FORCING_VARIABLES]
        self.warmup_days = int(warmup_days)
        self.initial_soil_moisture = float(initial_soil_moisture)
        self.dtype = dtype
        if arrays[0].ndim == 2:
            for v, a in zip(FORCING_VARIABLES, arrays, strict=True):
                if a.shape != arrays[0].shape:
                    raise ValueError(f"forcing {v} has shape {a.shape}, prcp has {arrays[0].shape}")
            self.basins: int | None = arrays[0].shape[0]
            self._forcing = []
            for b in range(self.basins):
                try:
                    self._forcing.append(prepare_forcing(*(a[b] for a in arrays), self.warmup_days))
                except ValueError as e:
                    raise ValueError(f"basin index {b}: {e}") from None
        else:
            self.basins = None
            self._forcing = [prepare_forcing(*arrays, self.warmup_days)]
        self.days = self._forcing[0][0].shape[0] - self.warmup_days if self._forcing else 0

    def run(self, params: np.ndarray) -> np.ndarray:
        """Run a batch of members.

        Parameters
        ----------
        params : array_like
            ``(members, 14)`` (or ``(14,)``) parameters, columns in ``HBV_SPACE.names`` order;
            for a many-basin runner ``(basins, members, 14)`` or ``(members, 14)`` for the same
            members in every basin.

        Returns
        -------
        numpy.ndarray
            ``(members, days)``, or ``(basins, members, days)``: simulated streamflow, mm day-1.

        Raises
        ------
        ValueError
            Wrong shape, or a parameter outside the model's valid domain (the message names it).
        """
        if self.basins is None:
            return simulate_prepared(self._forcing[0], check_params(params), self.warmup_days,
                                     self.initial_soil_moisture, self.dtype)
        par = np.asarray(params, dtype=np.float64)
        if par.ndim == 2:
            par = np.broadcast_to(par, (self.basins, *par.shape))
        if par.ndim != 3 or par.shape[0] != self.basins:
            raise ValueError(f"params must be (basins={self.basins}, members, {N_PARAMS}) or (members, {N_PARAMS}), "
                             f"got shape {np.shape(params)}")
        out = np.empty((self.basins, par.shape[1], self.days), dtype=self.dtype)
        for b, f in enumerate(self._forcing):
            try:
                p = check_params(par[b])
            except ValueError as e:
                raise ValueError(f"basin index {b}: {e}") from None
            simulate_prepared(f, p, self.warmup_days, self.initial_soil_moisture, self.dtype, out=out[b])
        return out

    def submit(self, params: np.ndarray) -> CompletedRun:
        """Run a batch now (the model runs in this process); see :meth:`run`."""
        return CompletedRun(self.run(params))


class HBVModel:
    """The :class:`~lsegeo.models.protocol.ModelAdapter` of the embedded HBV model.

    Parameters
    ----------
    initial_soil_moisture : float
        Initial soil moisture as a fraction of FC, in [0, 1].
    """

    name = "hbv"
    space = HBV_SPACE
    forcing_variables = FORCING_VARIABLES

    def __init__(self, initial_soil_moisture: float = 0.5) -> None:
        self.initial_soil_moisture = initial_soil_moisture

    def runner(self, forcing: Mapping[str, np.ndarray], *, warmup_days: int = 0,
               dtype=np.float64) -> HBVRunner:
        """A :class:`HBVRunner` on ``forcing`` (one basin's ``(time,)`` or several basins' ``(basins, time)``).

        Parameters
        ----------
        forcing : mapping of str to array_like
            :attr:`forcing_variables`, warm-up included.
        warmup_days : int
            Days simulated but not returned.
        dtype : numpy dtype
            float64 (default) or float32 for the returned flow.

        Returns
        -------
        HBVRunner

        Raises
        ------
        KeyError, ValueError
            As :class:`HBVRunner`.
        """
        return HBVRunner(forcing, warmup_days=warmup_days, initial_soil_moisture=self.initial_soil_moisture,
                         dtype=dtype)

    def run(self, forcing: Mapping[str, np.ndarray], params: np.ndarray) -> np.ndarray:
        """Run the members of one basin over the whole forcing.

        Parameters
        ----------
        forcing : mapping of str to array_like
            :attr:`forcing_variables`, each ``(time,)``.
        params : array_like
            ``(members, 14)`` parameters, columns in ``HBV_SPACE.names`` order.

        Returns
        -------
        numpy.ndarray
            ``(members, time)`` simulated streamflow, mm day-1, warm-up days included.

        Raises
        ------
        KeyError
            A forcing variable is missing.
        ValueError
            Invalid forcing or parameters.
        """
        return self.runner(forcing).run(params)
