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

from typing import TYPE_CHECKING

from lsegeo.registry import lazy_exports

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
    from lsegeo.emulators.archive import load as load
    from lsegeo.emulators.archive import load_bytes as load_bytes
    from lsegeo.emulators.features import STUDY_ATTRIBUTES as STUDY_ATTRIBUTES
    from lsegeo.emulators.features import AttributeEncoder as AttributeEncoder
    from lsegeo.emulators.features import TrainingSet as TrainingSet
    from lsegeo.emulators.features import encode_attributes as encode_attributes
    from lsegeo.emulators.features import space_from_store as space_from_store
    from lsegeo.emulators.features import training_set as training_set
    from lsegeo.emulators.lse import LargeSampleEmulator as LargeSampleEmulator
    from lsegeo.emulators.protocol import Backend as Backend
    from lsegeo.emulators.protocol import Emulator as Emulator
    from lsegeo.emulators.registry import BACKENDS as BACKENDS
    from lsegeo.emulators.registry import EMULATORS as EMULATORS
    from lsegeo.emulators.registry import FOLD_SCHEMES as FOLD_SCHEMES
    from lsegeo.emulators.registry import SSE_CANDIDATES as SSE_CANDIDATES
    from lsegeo.emulators.registry import create_emulator as create_emulator
    from lsegeo.emulators.registry import make_backend as make_backend
    from lsegeo.emulators.registry import register_backend as register_backend
    from lsegeo.emulators.settings import EmulatorSettings as EmulatorSettings
    from lsegeo.emulators.skill import cross_validate as cross_validate
    from lsegeo.emulators.skill import format_skill as format_skill
    from lsegeo.emulators.skill import grouped_folds as grouped_folds
    from lsegeo.emulators.skill import skill_metrics as skill_metrics
    from lsegeo.emulators.skill import within_basin_folds as within_basin_folds
    from lsegeo.emulators.sse import SingleSiteEmulator as SingleSiteEmulator


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
