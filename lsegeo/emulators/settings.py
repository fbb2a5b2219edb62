"""Settings of the emulate step: the one place that holds their defaults.

:class:`EmulatorSettings` owns the default of every setting of the emulator that the
calibration fits in each iteration: its kind, the LSE backend and its options, the
cross-validation of its skill, its seed and its threads. The ``calibrate`` section of the
configuration (:class:`lsegeo.config.CalibrateConfig`: ``emulator``, ``backend``, ``cv_folds``)
takes its defaults from here. The module imports nothing heavy, so the configuration can read it
cheaply; names are checked against the registries of :mod:`lsegeo.emulators.registry` without
importing any entry.

The defaults are those of Tang, Wood & Swenson (2025) where the study fixed one (a large-sample
emulator) and lsegeo's choices otherwise: XGBoost boosted trees instead of the study's
scikit-learn random forest, of the size in :data:`LOOP_BACKEND_OPTIONS`, and the prospective
skill on the proposals instead of a 5-fold cross-validation in every iteration (see
``docs/calibration.md`` and ``docs/benchmarks.md``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any

from lsegeo.emulators.registry import BACKENDS, DEFAULT_FOLD_SCHEME, EMULATORS, FOLD_SCHEMES

__all__ = ["EmulatorSettings", "LOOP_BACKEND_OPTIONS"]

#: The calibration loop's LSE backend options, where they differ from the backend's own defaults
#: (which a regionalization, fitting once, keeps): the loop refits its emulator in every iteration
#: and screens millions of candidates with it, so it takes fewer, deeper trees with a larger
#: learning rate (150 trees of depth 10, rate 0.2, 64 histogram bins, against XGBoost's 600 of
#: depth 8, rate 0.05, 256 bins). Measured on the CAMELS loop (docs/benchmarks.md, "The LSE
#: calibration loop at full speed"): fits about 3x and predictions about 4x faster, at a median
#: best KGE' no worse at equal runs.
LOOP_BACKEND_OPTIONS: Mapping[str, Mapping[str, Any]] = MappingProxyType({
    "xgboost": MappingProxyType({"n_estimators": 150, "max_depth": 10, "learning_rate": 0.2, "max_bin": 64}),
})


@dataclass(frozen=True)
class EmulatorSettings:
    """Settings of one emulator fit and its skill cross-validation.

    Attributes
    ----------
    kind : str
        ``"lse"`` (:class:`~lsegeo.emulators.lse.LargeSampleEmulator`, one model over all
        basins) or ``"sse"`` (:class:`~lsegeo.emulators.sse.SingleSiteEmulator`, one per
        basin); see :data:`~lsegeo.emulators.registry.EMULATORS`.
    backend : str
        LSE backend, see :data:`~lsegeo.emulators.registry.BACKENDS`: ``"xgboost"``,
        ``"random_forest"`` or ``"torch_mlp"``. Unused by the SSE.
    backend_options : mapping or None
        Keyword arguments of the emulator beyond kind, seed and threads: the backend's options
        for the LSE (e.g. ``{"n_estimators": 300}``; ``{}`` is the backend's own defaults), the
        settings of :data:`~lsegeo.emulators.surrogates.SSE_DEFAULTS` for the SSE. None (the
        default) takes :data:`LOOP_BACKEND_OPTIONS` for an LSE of that backend, ``{}``
        otherwise. Held read-only.
    cv_folds : int
        Folds of the skill cross-validation refitted in every calibration iteration; 0 (the
        default) for none: the loop measures the emulator's prospective skill on the members it
        proposed instead (:func:`lsegeo.calibration.loop.prospective_skill`), at the cost of one
        prediction. Tang, Wood & Swenson (2025) cross-validate with 5 folds.
    cv_scheme : str or None
        ``"grouped"`` (folds of basins) or ``"within_basin"`` (folds of each basin's members);
        None takes the kind's own (:data:`~lsegeo.emulators.registry.DEFAULT_FOLD_SCHEME`).
    seed : int
        Seed of the emulator and of the folds (the calibration loop adds ``k`` in iteration
        ``k``).
    threads : int or None
        Threads of the LSE's fit and prediction; None for the threads of the dask worker it runs
        in, or every core this process may use outside a worker (:func:`lsegeo.runtime.worker_threads`).

    Raises
    ------
    lsegeo.errors.UnknownNameError
        ``kind``, ``backend`` or ``cv_scheme`` is not registered.
    ValueError
        ``cv_folds`` is 1 or negative, or ``threads`` below 1.
    """

    kind: str = "lse"
    backend: str = "xgboost"
    backend_options: Mapping[str, Any] | None = None
    cv_folds: int = 0
    cv_scheme: str | None = None
    seed: int = 20250702
    threads: int | None = None

    def __post_init__(self) -> None:
        EMULATORS.check(self.kind)
        BACKENDS.check(self.backend)
        if self.cv_scheme is not None:
            FOLD_SCHEMES.check(self.cv_scheme)
        if self.cv_folds < 0 or self.cv_folds == 1:
            raise ValueError(f"cv_folds must be 0 (no cross-validation) or at least 2, got {self.cv_folds}")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads must be at least 1 (or None for every core), got {self.threads}")
        options = self.backend_options
        if options is None:
            options = LOOP_BACKEND_OPTIONS.get(self.backend, {}) if self.kind == "lse" else {}
        object.__setattr__(self, "backend_options", MappingProxyType(dict(options)))

    @property
    def scheme(self) -> str:
        """The fold scheme of the cross-validation: :attr:`cv_scheme`, or the kind's default."""
        return self.cv_scheme or DEFAULT_FOLD_SCHEME[self.kind]

    @property
    def n_threads(self) -> int:
        """:attr:`threads`, None resolved by :func:`lsegeo.runtime.worker_threads` (a worker's threads or all cores)."""
        if self.threads is not None:
            return int(self.threads)
        from lsegeo.runtime import worker_threads

        return worker_threads()

    def with_seed(self, seed: int) -> EmulatorSettings:
        """A copy with another seed (e.g. ``settings.with_seed(settings.seed + k)``)."""
        return replace(self, seed=int(seed), backend_options=dict(self.backend_options))
