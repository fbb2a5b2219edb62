"""The registry of objectives: each score by name, with its units, sense and perfect value.

An *objective* is the function, a *score* its value. :data:`OBJECTIVES` is a
:class:`lsegeo.registry.Registry` of :class:`Objective` records, one per score that
:mod:`lsegeo.metrics.kernels` computes; :func:`get_objective` looks one up (an unknown name is an
:class:`~lsegeo.errors.UnknownNameError` that lists the known ones), and :func:`as_loss` turns
a score into a quantity to minimise whatever its sense. A new objective is registered with
``OBJECTIVES.add(name, Objective(...))``; its ``func`` must follow the kernels' signature.

The efficiencies (KGE, KGE', NSE, logNSE) are maximised, with 1 for a perfect simulation; the
errors (MAE, RMSE, the monthly score) are minimised, with 0 for a perfect simulation. nKGE' is
KGE' made bounded (:func:`lsegeo.metrics.kernels.bounded_efficiency`), the emulators' target.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from lsegeo.metrics.kernels import (
    FLOW_UNITS,
    SCORE_NAMES,
    kge_np,
    kgeprime_np,
    lognse_np,
    mae_np,
    monthly_mean_maxabs_np,
    nkgeprime_np,
    nse_np,
    rmse_np,
)
from lsegeo.registry import Registry

__all__ = ["Objective", "OBJECTIVES", "get_objective", "as_loss", "default_names"]


@dataclass(frozen=True)
class Objective:
    """A score and how to read it.

    Attributes
    ----------
    name : str
        Registry key, also the name of xarray results.
    func : callable
        The numpy kernel ``func(sim, obs, month=None, *, min_valid=2) -> ndarray``.
    long_name : str
        Human-readable name (the ``long_name`` attribute of xarray results).
    units : {"1", "mm day-1"}
        "1" for dimensionless efficiencies, the flow units for errors.
    sense : {"max", "min"}
        Whether larger ("max") or smaller ("min") is better.
    best : float
        The score of a perfect simulation.
    needs_month : bool
        Whether ``func`` needs the ``month`` argument.
    """

    name: str
    func: Callable[..., np.ndarray]
    long_name: str
    units: str
    sense: Literal["max", "min"]
    best: float
    needs_month: bool = False

    def loss(self, values):
        """``best - values`` for a score to maximise, ``values - best`` for one to minimise.

        Parameters
        ----------
        values : float, ndarray or DataArray
            Scores of this objective.

        Returns
        -------
        same type as ``values``
            0 for a perfect simulation, larger is worse; NaN stays NaN.
        """
        if self.sense == "max":
            return self.best - values
        return values - self.best


class _ObjectiveRegistry(Registry[Objective]):
    """The objective registry, also indexable by name (``OBJECTIVES["kge"]``, like a mapping)."""

    def __getitem__(self, name: str) -> Objective:
        return self.get(name)


OBJECTIVES: Registry[Objective] = _ObjectiveRegistry("objective", {
    o.name: o
    for o in (
        Objective("kge", kge_np, "Kling-Gupta efficiency (Gupta et al. 2009)", "1", "max", 1.0),
        Objective("kgeprime", kgeprime_np,
                  "modified Kling-Gupta efficiency KGE' (Kling et al. 2012)", "1", "max", 1.0),
        Objective("nkgeprime", nkgeprime_np,
                  "normalised modified Kling-Gupta efficiency KGE'/(2-KGE')", "1", "max", 1.0),
        Objective("nse", nse_np,
                  "Nash-Sutcliffe efficiency (Nash and Sutcliffe 1970)", "1", "max", 1.0),
        Objective("lognse", lognse_np,
                  "Nash-Sutcliffe efficiency of log(q + 0.01 mean(qobs))", "1", "max", 1.0),
        Objective("mae", mae_np, "mean absolute error of streamflow", FLOW_UNITS, "min", 0.0),
        Objective("rmse", rmse_np, "root mean squared error of streamflow", FLOW_UNITS, "min", 0.0),
        Objective("monthly_mean_maxabs", monthly_mean_maxabs_np,
                  "maximum absolute error of the 12 monthly mean flows", FLOW_UNITS, "min", 0.0,
                  needs_month=True),
    )
})
"""The objectives by name (a :class:`~lsegeo.registry.Registry`; ``OBJECTIVES[name]`` works too)."""


def default_names(*, with_month: bool = True) -> list[str]:
    """The registered objectives in their canonical order (that of the kernels, then the others).

    Parameters
    ----------
    with_month : bool
        Include the objectives that need the month of each day.

    Returns
    -------
    list of str
    """
    names = [n for n in SCORE_NAMES if n in OBJECTIVES]
    names += [n for n in OBJECTIVES.names() if n not in SCORE_NAMES]
    return [n for n in names if with_month or not OBJECTIVES.get(n).needs_month]


def get_objective(name: str) -> Objective:
    """The :class:`Objective` called ``name``.

    Raises
    ------
    lsegeo.errors.UnknownNameError
        If ``name`` is unknown (a ``KeyError``); the message lists the known names.
    """
    return OBJECTIVES.get(name)


def as_loss(name: str, values):
    """Turn values of score ``name`` into a loss to minimise (0 for a perfect simulation).

    ``1 - score`` for the efficiencies (KGE, KGE', nKGE', NSE, logNSE), the error itself for
    MAE, RMSE and the monthly score. NaN stays NaN: a minimiser should rank it last.

    Parameters
    ----------
    name : str
        A registered objective (:data:`OBJECTIVES`).
    values : ndarray, DataArray or float
        Values of that score.

    Returns
    -------
    same type as ``values``

    Raises
    ------
    lsegeo.errors.UnknownNameError
        For an unknown name (a ``KeyError``).
    """
    return get_objective(name).loss(values)
