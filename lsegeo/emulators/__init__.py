"""Pipeline step 4, *emulate*: machine-learning emulators of a process model's scores.

An emulator predicts the score(s) of a parameter vector in a basin without running the model:
``predict(basin_idx, u) -> (n, n_targets)``, with ``u`` in the unit cube of the ensemble's
parameter space. Two kinds, after Tang, Wood & Swenson (2025):

* :class:`LargeSampleEmulator` (LSE, :mod:`~lsegeo.emulators.lse`): one model over all basins,
  with basin attributes as features; it can predict unseen basins (regionalization). Backends
  (:data:`BACKENDS`): ``xgboost`` (default), ``random_forest`` (XGBoost's random-forest mode),
  ``torch_mlp`` (optional, needs PyTorch).
* :class:`SingleSiteEmulator` (SSE, :mod:`~lsegeo.emulators.sse`): one Gaussian process or
  random forest per basin, chosen by cross-validation (:mod:`~lsegeo.emulators.surrogates`).

Modules, lowest first (none imports this package's ``__init__``):

* :mod:`~lsegeo.emulators.registry` -- the plug-in registries (emulator kinds, LSE backends, SSE
  candidates, CV fold schemes);
* :mod:`~lsegeo.emulators.settings` -- :class:`EmulatorSettings`, the step's defaults;
* :mod:`~lsegeo.emulators.protocol` -- the :class:`Emulator` and :class:`Backend` interfaces;
* :mod:`~lsegeo.emulators.archive` -- saving in native formats, :func:`load`, :func:`load_bytes`;
* :mod:`~lsegeo.emulators.core` -- what the LSE and the SSE share;
* :mod:`~lsegeo.emulators.features` -- training data and attribute encoding;
* :mod:`~lsegeo.emulators.backends` -- the LSE backends (``trees``, ``torch_mlp``);
* :mod:`~lsegeo.emulators.lse`, :mod:`~lsegeo.emulators.surrogates`, :mod:`~lsegeo.emulators.sse`;
* :mod:`~lsegeo.emulators.skill` -- cross-validated skill.

The names below are imported on first use, so ``import lsegeo.emulators.settings`` (as the
configuration does) loads neither xarray nor any emulator.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

#: public name -> the module that defines it
_EXPORTS: dict[str, str] = {
    "EMULATORS": "lsegeo.emulators.registry",
    "BACKENDS": "lsegeo.emulators.registry",
    "SSE_CANDIDATES": "lsegeo.emulators.registry",
    "FOLD_SCHEMES": "lsegeo.emulators.registry",
    "register_backend": "lsegeo.emulators.registry",
    "make_backend": "lsegeo.emulators.registry",
    "create_emulator": "lsegeo.emulators.registry",
    "EmulatorSettings": "lsegeo.emulators.settings",
    "Emulator": "lsegeo.emulators.protocol",
    "Backend": "lsegeo.emulators.protocol",
    "load": "lsegeo.emulators.archive",
    "load_bytes": "lsegeo.emulators.archive",
    "STUDY_ATTRIBUTES": "lsegeo.emulators.features",
    "AttributeEncoder": "lsegeo.emulators.features",
    "TrainingSet": "lsegeo.emulators.features",
    "encode_attributes": "lsegeo.emulators.features",
    "space_from_store": "lsegeo.emulators.features",
    "training_set": "lsegeo.emulators.features",
    "LargeSampleEmulator": "lsegeo.emulators.lse",
    "SingleSiteEmulator": "lsegeo.emulators.sse",
    "cross_validate": "lsegeo.emulators.skill",
    "format_skill": "lsegeo.emulators.skill",
    "grouped_folds": "lsegeo.emulators.skill",
    "within_basin_folds": "lsegeo.emulators.skill",
    "skill_metrics": "lsegeo.emulators.skill",
}

__all__ = list(_EXPORTS)

if TYPE_CHECKING:  # for type checkers and IDEs; at run time the names load lazily
    from lsegeo.emulators.archive import load, load_bytes
    from lsegeo.emulators.features import (
        STUDY_ATTRIBUTES,
        AttributeEncoder,
        TrainingSet,
        encode_attributes,
        space_from_store,
        training_set,
    )
    from lsegeo.emulators.lse import LargeSampleEmulator
    from lsegeo.emulators.protocol import Backend, Emulator
    from lsegeo.emulators.registry import (
        BACKENDS,
        EMULATORS,
        FOLD_SCHEMES,
        SSE_CANDIDATES,
        create_emulator,
        make_backend,
        register_backend,
    )
    from lsegeo.emulators.settings import EmulatorSettings
    from lsegeo.emulators.skill import cross_validate, format_skill, grouped_folds, skill_metrics, within_basin_folds
    from lsegeo.emulators.sse import SingleSiteEmulator


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'lsegeo.emulators' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
