"""The registry of process-model adapters (see :mod:`lsegeo.models.protocol`).

Adapters are registered by ``"module:attribute"`` text, so that listing them imports nothing and
a model's libraries (numba for HBV, CIME tooling for CTSM) are loaded only by the runs that
choose it. Register another with ``MODELS.add("name", "package.module:Adapter")`` or the
``@MODELS.register("name")`` class decorator.
"""

from __future__ import annotations

from typing import Any

from lsegeo.models.protocol import ModelAdapter
from lsegeo.registry import Registry

__all__ = ["MODELS", "get_model"]

MODELS: Registry[Any] = Registry("model", {"hbv": "lsegeo.models.hbv.adapter:HBVModel",
                                          "ctsm": "lsegeo.models.ctsm.adapter:CTSMModel"})
"""Model adapter factories (classes or functions returning a :class:`ModelAdapter`) by name."""


def get_model(name: str, **options: Any) -> ModelAdapter:
    """An instance of the adapter registered as ``name``.

    Parameters
    ----------
    name : str
        A registered model (:data:`MODELS`).
    **options
        Passed to the adapter's factory (e.g. ``initial_soil_moisture`` for HBV; ``version``,
        ``parameters``, ``bounds`` for CTSM).

    Returns
    -------
    ModelAdapter

    Raises
    ------
    lsegeo.errors.UnknownNameError
        The name is not registered (a ``KeyError``); the message lists the registered names.
    lsegeo.errors.MissingDependencyError
        The adapter needs a package that is not installed.
    TypeError
        What the factory returned does not implement :class:`ModelAdapter`.
    """
    model = MODELS.create(name, **options)
    if not isinstance(model, ModelAdapter):
        raise TypeError(f"model {name!r} does not implement the ModelAdapter protocol "
                        "(name, space, forcing_variables, runner, run)")
    return model
