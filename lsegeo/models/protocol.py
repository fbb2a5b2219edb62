"""The process-model adapter protocol and the registry of adapters.

An adapter is what lsegeo needs from a process model: its parameter space, the forcing
variables it reads, and a way to run many members of one basin and return simulated flow.
The embedded HBV model, CTSM (driven on HPC through CIME) and tables of ensembles run elsewhere
all plug in the same way::

    @register_model("mymodel")
    class MyModel:
        name = "mymodel"
        space = ParameterSpace(...)
        forcing_variables = ("prcp", "pet")
        def run(self, forcing, params): ...   # -> (members, time) mm/day

Adapters that need heavy or optional libraries are registered by module path, so that listing
the registry imports nothing (see :data:`MODELS`).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Protocol, runtime_checkable

import numpy as np

from lsegeo.design import ParameterSpace

__all__ = ["ModelAdapter", "MODELS", "register_model", "get_model", "available_models"]


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
        Variables of the basins store's ``forcing`` group that :meth:`run` reads.
    """

    name: str
    space: ParameterSpace
    forcing_variables: tuple[str, ...]

    def run(self, forcing: Mapping[str, np.ndarray], params: np.ndarray) -> np.ndarray:
        """Run the members of one basin.

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


#: name -> "module:attribute" of a factory (class or function) returning an adapter
MODELS: dict[str, str | Callable[[], ModelAdapter]] = {
    "hbv": "lsegeo.models.hbv.model:HBVModel",
}


def register_model(name: str) -> Callable:
    """Class decorator that registers a model adapter under ``name``."""

    def deco(factory):
        MODELS[name] = factory
        return factory

    return deco


def available_models() -> list[str]:
    """Names of the registered model adapters."""
    return sorted(MODELS)


def get_model(name: str, **options) -> ModelAdapter:
    """Return an instance of the adapter registered as ``name``.

    Raises
    ------
    KeyError
        The name is not registered; the message lists the registered names.
    """
    try:
        factory = MODELS[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; registered models: {', '.join(available_models())}") from None
    if isinstance(factory, str):
        module, attr = factory.split(":")
        factory = getattr(importlib.import_module(module), attr)
    model = factory(**options)
    if not isinstance(model, ModelAdapter):
        raise TypeError(f"model {name!r} does not implement the ModelAdapter protocol "
                        "(name, space, forcing_variables, run)")
    return model
