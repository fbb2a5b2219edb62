"""Pipeline step 4, *emulate*: machine-learning emulators of a process model's scores.

An emulator predicts the score(s) of a parameter vector in a basin without running the model:
``predict(basin_idx, u) -> (n, n_targets)``, with ``u`` in the unit cube of the ensemble's
parameter space. Two kinds, after Tang, Wood & Swenson (2025):

* :class:`LargeSampleEmulator` (LSE, :mod:`~lsegeo.emulators.lse`): one model over all basins,
  with basin attributes as features; it can predict unseen basins (regionalization). Backends
  (:data:`BACKENDS`): ``xgboost`` (default), ``random_forest`` (XGBoost's random-forest mode),
  ``torch_mlp`` (optional, needs PyTorch).
* :class:`SingleSiteEmulator` (SSE, :mod:`~lsegeo.emulators.sse`): one Gaussian process or
  random forest per basin, chosen by cross-validation.

Modules: :mod:`~lsegeo.emulators.features` (training data and attribute encoding),
:mod:`~lsegeo.emulators.base` (protocol, backend registry, saving), :mod:`~lsegeo.emulators.backends.trees`
and :mod:`~lsegeo.emulators.backends.torch_mlp` (LSE backends), :mod:`~lsegeo.emulators.skill` (cross-validated
skill).
"""

from lsegeo.emulators.base import BACKENDS, Emulator, load, load_bytes, register_backend
from lsegeo.emulators.features import (
    STUDY_ATTRIBUTES,
    AttributeEncoder,
    TrainingSet,
    encode_attributes,
    space_from_store,
    training_set,
)
from lsegeo.emulators.lse import LargeSampleEmulator
from lsegeo.emulators.skill import (
    cross_validate,
    format_skill,
    grouped_folds,
    skill_metrics,
    within_basin_folds,
)
from lsegeo.emulators.sse import SingleSiteEmulator

__all__ = [
    "STUDY_ATTRIBUTES",
    "AttributeEncoder",
    "TrainingSet",
    "encode_attributes",
    "space_from_store",
    "training_set",
    "Emulator",
    "BACKENDS",
    "register_backend",
    "load",
    "load_bytes",
    "LargeSampleEmulator",
    "SingleSiteEmulator",
    "cross_validate",
    "format_skill",
    "grouped_folds",
    "within_basin_folds",
    "skill_metrics",
]
