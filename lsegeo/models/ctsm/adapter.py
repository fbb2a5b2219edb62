"""The CTSM model adapter: the parameter space of a design, for a model that runs as external jobs.

:class:`CTSMModel` is the :class:`~lsegeo.models.protocol.ModelAdapter` registered as ``"ctsm"``
(:func:`lsegeo.models.registry.get_model`). It is an *external* adapter
(:func:`lsegeo.models.protocol.is_external`): it defines what a design and a calibration need,
the parameter space built from the CTSM parameter registry
(:meth:`lsegeo.models.ctsm.parameters.CtsmRegistry.space`), and nothing runs in the worker. Its
members are run as separate jobs by ``lsegeo launch CONFIG``
(:func:`lsegeo.ensembles.external.run_external_ensemble`): each member's inputs are written
(:mod:`lsegeo.models.ctsm.launch`), a CIME case is cloned and submitted, and its daily history
is read back and scored. So ``lsegeo ensemble`` with ``model: ctsm`` creates the ensemble store
with every member pending and runs nothing (:func:`lsegeo.workflows.ensemble.ensemble_job`), and
:meth:`CTSMModel.runner` and :meth:`CTSMModel.run` raise a :class:`~lsegeo.errors.ConfigError`
that says so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal, NoReturn

import numpy as np

from lsegeo.design import ParameterSpace
from lsegeo.errors import ConfigError
from lsegeo.models.ctsm.parameters import LAYOUTS, layout_of, load_registry
from lsegeo.models.protocol import BatchRunner

__all__ = ["CTSMModel"]


class CTSMModel:
    """CTSM as lsegeo sees it: a parameter space whose members run on HPC through ``lsegeo launch``.

    Parameters
    ----------
    version : str
        CTSM layout (``"5.1"``, ``"5.3"``, ``"5.4"``) or tag (``"ctsm5.3.012"``); decides where
        each parameter is read (:func:`lsegeo.models.ctsm.parameters.layout_of`) and is recorded
        in the space's name (``ctsm5.4-calibration``).
    parameters : sequence of str, optional
        Registry parameters of the space, in this order; default the study's final 16
        (:attr:`~lsegeo.models.ctsm.parameters.CtsmRegistry.final16`). Bound parameters (the
        rain/snow thresholds that follow their master) cannot be listed.
    bounds : {"calibration", "sensitivity"}
        The registry's calibration bounds or the range of the study's sensitivity ensemble.

    Attributes
    ----------
    name : str
        ``"ctsm"``.
    external : bool
        ``True``: members run as separate jobs (:func:`lsegeo.models.protocol.is_external`).
    space : ParameterSpace
        Bounds, defaults (``per_cell`` defaults clipped into the bounds) and scales of the
        registry rows.
    forcing_variables : tuple of str
        ``()``: CTSM reads its own atmospheric forcing in its case, nothing of the basins store.
    version : str
        The CTSM layout (one of :data:`~lsegeo.models.ctsm.parameters.LAYOUTS`).

    Raises
    ------
    ValueError
        An unknown version or bounds, a name that is not in the registry (the message names it
        and lists the known ones), a bound parameter, a repeated or empty list.
    """

    name = "ctsm"
    external = True
    forcing_variables: tuple[str, ...] = ()

    def __init__(self, version: str = "5.4", parameters: Sequence[str] | None = None,
                 bounds: Literal["calibration", "sensitivity"] = "calibration") -> None:
        registry = load_registry()
        try:
            self.version = layout_of(version)
        except ValueError as err:
            raise ValueError(f"version: {err} (layouts: {', '.join(LAYOUTS)})") from None
        if isinstance(parameters, str):
            raise ValueError(f"parameters: give a list of names, not the text {parameters!r}")
        names = list(registry.final16 if parameters is None else parameters)
        unknown = [n for n in names if n not in registry]
        if unknown:
            raise ValueError(f"parameters: {', '.join(map(repr, unknown))} "
                             f"{'is not a CTSM parameter' if len(unknown) == 1 else 'are not CTSM parameters'} "
                             f"of the registry; known: {', '.join(registry.names)}")
        if not names or len(set(names)) != len(names):
            raise ValueError(f"parameters: a non-empty list without repeats is needed, got {names}")
        self.space: ParameterSpace = registry.space(names, self.version, bounds=bounds)

    def _external(self) -> NoReturn:
        raise ConfigError("model 'ctsm' runs as external jobs on HPC, not inside lsegeo: create the ensemble "
                          "store with `lsegeo ensemble CONFIG` (its members stay pending) and run them with "
                          "`lsegeo launch CONFIG` (section `external`; docs/ctsm.md)")

    def runner(self, forcing: Mapping[str, np.ndarray], *, warmup_days: int = 0) -> BatchRunner:
        """Refused: CTSM members run as jobs of ``lsegeo launch``.

        Raises
        ------
        ConfigError
            Always; the message names ``lsegeo ensemble`` and ``lsegeo launch``.
        """
        self._external()

    def run(self, forcing: Mapping[str, np.ndarray], params: np.ndarray) -> np.ndarray:
        """Refused: CTSM members run as jobs of ``lsegeo launch``.

        Raises
        ------
        ConfigError
            Always, as :meth:`runner`.
        """
        self._external()
