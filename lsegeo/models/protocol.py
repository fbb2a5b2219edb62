"""The process-model adapter protocol: what lsegeo needs from a model, and its batch runner.

An adapter is what lsegeo needs from a process model: its parameter space, the forcing
variables it reads, and a way to run many members ("parameter sets") of one basin and return
simulated flow. The embedded HBV model (:class:`lsegeo.models.hbv.adapter.HBVModel`), CTSM
(driven on HPC through CIME) and tables of ensembles run elsewhere all plug in the same way,
registered in :data:`lsegeo.models.registry.MODELS`::

    @MODELS.register("mymodel")
    class MyModel:
        name = "mymodel"
        space = ParameterSpace(...)
        forcing_variables = ("prcp", "pet")
        def runner(self, forcing, *, warmup_days=0): ...   # -> a BatchRunner
        def run(self, forcing, params): ...                 # -> (members, time) mm/day

The batch runner: the model owns its fast path
-----------------------------------------------
Callers that run the same basin many times (direct calibration by DDS: thousands of small
batches of candidates; the ensemble runner: one batch per basin) ask the adapter for a
:class:`BatchRunner` bound to the basin's forcing and warm-up, and hand it parameter sets only.
Whatever the model needs between batches lives in the runner: checked and converted forcing,
scratch buffers, spin-up states or restart files, a case directory. Calibration, DDS and the
ensemble runner never see a model's states, its kernel or its files; a model whose spin-up does
not depend on the parameters can compute it once when the runner is made, one whose spin-up
does (HBV: the warm-up runs with each member's parameters) redoes it in every batch.

A runner has two steps, :meth:`BatchRunner.submit` and :meth:`SubmittedRun.result`, so that a
caller stepping many basins submits the batches of every basin before it waits for any;
:meth:`BatchRunner.run` is the two in one. An in-process model computes in ``submit`` and
returns a :class:`CompletedRun`.

An external model (e.g. CTSM, whose members run as separate HPC jobs)
--------------------------------------------------------------------------
Such a model plugs in one of two ways.

**Launched by lsegeo** (CTSM, :class:`lsegeo.models.ctsm.adapter.CTSMModel`): the adapter sets
the class attribute ``external = True`` (read by :func:`is_external`; an adapter without it is
in-process) and provides its ``name``, ``space`` and ``forcing_variables`` (usually ``()``);
its ``runner`` and ``run`` raise :class:`~lsegeo.errors.ConfigError` naming the commands below.
``lsegeo ensemble`` then creates the ensemble store of the design with every member pending and
runs nothing (:func:`lsegeo.workflows.ensemble.ensemble_job`); ``lsegeo launch`` runs the
pending members, one dask task each, through a command template with the member's inputs
written to its own folder, and scores their history files into the store
(:func:`lsegeo.ensembles.external.run_external_ensemble`, :mod:`lsegeo.models.external`).

**A batch runner that submits jobs itself**: the adapter implements the same protocol with
members prepared as inputs, run later, read back:

* ``runner(forcing, warmup_days=...)`` sets up the basin once: ``forcing`` names the basin's
  inputs (e.g. paths of its atmospheric forcing and surface data, or arrays the runner writes
  out); the runner creates or clones the basin's case (CIME ``create_newcase`` /
  ``create_clone``), builds it once, and, where the spin-up does not depend on the calibrated
  parameters, runs the spin-up once and keeps its restart file.
* ``submit(params)`` writes one input set per member (a parameter file with the member's values,
  the namelist pointing at it and at the restart file, a run directory) and submits every member
  as a job (or one job array) through the scheduler, then returns at once. The handle it returns
  records only plain data (run directories, job ids), so it can be pickled to a dask worker or
  written to a store and collected by a later process.
* ``result()`` waits for those jobs (polling the scheduler or the files they leave), reads each
  member's daily history output back, converts it to basin-mean runoff in mm day-1, drops the
  warm-up days and returns ``(members, days)``. A member whose job failed is a row of NaN, which
  the callers treat as a failed run (the ensemble) or the worst score (DDS).

Nothing in calibration changes for such a model; only the cost of a batch does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from lsegeo.design import ParameterSpace

__all__ = ["ModelAdapter", "BatchRunner", "SubmittedRun", "CompletedRun", "is_external"]


@runtime_checkable
class SubmittedRun(Protocol):
    """A batch of members handed to a model, whose flow is collected by :meth:`result`."""

    def result(self) -> np.ndarray:
        """Wait for the batch and return its flow.

        Returns
        -------
        numpy.ndarray
            ``(members, days)`` for a one-basin runner, ``(basins, members, days)`` for a
            many-basin one; simulated streamflow in mm day-1, warm-up days left out.

        Raises
        ------
        ValueError
            The model could not run the batch (e.g. a parameter outside its valid domain).
        """
        ...


@dataclass(frozen=True)
class CompletedRun:
    """A batch that was computed when it was submitted (the runners of in-process models).

    Attributes
    ----------
    flow : numpy.ndarray
        The simulated flow, returned by :meth:`result`.
    """

    flow: np.ndarray

    def result(self) -> np.ndarray:
        """The flow computed at submission."""
        return self.flow


@runtime_checkable
class BatchRunner(Protocol):
    """Runs batches of members of one basin (or of several basins) on fixed forcing.

    Made by :meth:`ModelAdapter.runner`; see the module notes for what it keeps.

    Attributes
    ----------
    days : int
        Length of the time axis of the flow it returns (the forcing's days less the warm-up).
    """

    days: int

    def submit(self, params: np.ndarray) -> SubmittedRun:
        """Start a batch.

        Parameters
        ----------
        params : numpy.ndarray
            ``(members, len(space))`` parameter values, columns in ``space.names`` order; for a
            many-basin runner ``(basins, members, len(space))`` (or ``(members, len(space))``,
            the same members in every basin).

        Returns
        -------
        SubmittedRun
            Its :meth:`~SubmittedRun.result` is the flow, ``(members, days)`` (or
            ``(basins, members, days)``), mm day-1.

        Raises
        ------
        ValueError
            Wrong shape or a parameter outside the model's valid domain.
        """
        ...

    def run(self, params: np.ndarray) -> np.ndarray:
        """``submit(params).result()``."""
        ...


@runtime_checkable
class ModelAdapter(Protocol):
    """What lsegeo needs from a process model.

    Attributes
    ----------
    name : str
        Registry name.
    space : ParameterSpace
        The parameters that can be calibrated, with bounds and defaults.
    forcing_variables : tuple of str
        Variables of the basins store's ``forcing`` group that the model reads.
    """

    name: str
    space: ParameterSpace
    forcing_variables: tuple[str, ...]

    def runner(self, forcing: Mapping[str, np.ndarray], *, warmup_days: int = 0) -> BatchRunner:
        """A batch runner bound to one basin's forcing (or several basins').

        Parameters
        ----------
        forcing : mapping of str to numpy.ndarray
            Each of :attr:`forcing_variables` as a ``(time,)`` float64 array, warm-up included
            (``(basins, time)`` for a many-basin runner, where the model supports one).
        warmup_days : int
            Days at the start that are simulated but not returned.

        Returns
        -------
        BatchRunner

        Raises
        ------
        KeyError
            A forcing variable is missing.
        ValueError
            The forcing is unusable (wrong shape, NaN in the window, ...).
        """
        ...

    def run(self, forcing: Mapping[str, np.ndarray], params: np.ndarray) -> np.ndarray:
        """Run the members of one basin over the whole forcing: ``runner(forcing).run(params)``.

        Parameters
        ----------
        forcing : mapping of str to numpy.ndarray
            Each of :attr:`forcing_variables` as a (time,) float64 array, warm-up included.
        params : numpy.ndarray
            ``(members, len(space))`` parameter values, columns in ``space.names`` order.

        Returns
        -------
        numpy.ndarray
            Simulated streamflow, ``(members, time)`` in mm day-1.
        """
        ...


def is_external(model: object) -> bool:
    """Whether an adapter's members run as external jobs launched by ``lsegeo launch``.

    Parameters
    ----------
    model : ModelAdapter
        An adapter (:func:`lsegeo.models.registry.get_model`).

    Returns
    -------
    bool
        The adapter's ``external`` attribute; ``False`` when it has none (an in-process model).
    """
    return bool(getattr(model, "external", False))
