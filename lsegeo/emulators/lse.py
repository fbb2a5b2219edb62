"""The large-sample emulator (LSE): one model over all basins, attributes as features.

Features of a row are ``[u, a]``: the member's parameters in the unit cube (``n_params``
columns) and the encoded attributes of its basin (:mod:`lsegeo.emulators.features`). One model
(one per target) learns the scores of every (basin, member) row of the training set, so it can
also predict basins (or grid cells) it has never seen, from their attributes alone
(:meth:`LargeSampleEmulator.predict_features`) -- the regionalization of Tang, Wood & Swenson
(2025), whose LSE was a random forest (Breiman 2001) on 27 CAMELS attributes.

The model is a backend of :data:`lsegeo.emulators.registry.BACKENDS`: ``xgboost`` (default:
gradient-boosted trees, Chen & Guestrin 2016), ``random_forest`` (XGBoost's random-forest mode)
or ``torch_mlp`` (a multilayer perceptron, needs PyTorch).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from lsegeo.emulators.archive import load_npz, save_npz, write_meta
from lsegeo.emulators.core import EmulatorCore, check_rows
from lsegeo.emulators.features import AttributeEncoder, TrainingSet
from lsegeo.emulators.registry import BACKENDS, make_backend
from lsegeo.emulators.settings import EmulatorSettings
from lsegeo.runtime import worker_threads

__all__ = ["LargeSampleEmulator"]

logger = logging.getLogger(__name__)


class LargeSampleEmulator(EmulatorCore):
    """One regression model over all basins: ``[u, attributes(basin)] -> scores``.

    Parameters
    ----------
    backend : str
        Name in :data:`lsegeo.emulators.registry.BACKENDS`: ``"xgboost"`` (default),
        ``"random_forest"`` or ``"torch_mlp"``.
    seed : int
        Seed of the model.
    n_jobs : int
        Threads for fitting and prediction.
    **options
        Backend options (e.g. ``n_estimators=300`` for the tree backends, ``hidden=[128]`` for
        the MLP); they override the backend's defaults.

    Raises
    ------
    lsegeo.errors.UnknownNameError
        ``backend`` is not registered (a :class:`KeyError`; the message lists the known ones).

    Examples
    --------
    >>> ts = training_set("work/ensemble_hbv.zarr", "work/camels_basins.zarr")  # doctest: +SKIP
    >>> em = LargeSampleEmulator(seed=1, n_jobs=4).fit(ts)                      # doctest: +SKIP
    >>> em.predict(np.array([0, 0]), np.full((2, len(em.param_names)), 0.5))   # doctest: +SKIP
    """

    kind = "lse"

    def __init__(self, backend: str = EmulatorSettings.backend, seed: int = 0, n_jobs: int = 1, **options: Any) -> None:
        BACKENDS.check(backend)
        self._init_core(seed, n_jobs)
        self.backend = backend
        self.options = dict(options)
        self._model: Any = None
        self._attributes = np.zeros((0, 0))
        self._encoder: AttributeEncoder | None = None

    # -- properties ---------------------------------------------------------------------------
    @property
    def attribute_names(self) -> list[str]:
        """Encoded attribute feature names, the columns of ``attr_rows``."""
        return self._encoder.feature_names if self._encoder else []

    @property
    def attributes(self) -> np.ndarray:
        """``(n_basins, n_attr)`` encoded attributes of :attr:`basins`."""
        return self._attributes

    @property
    def encoder(self) -> AttributeEncoder:
        """The attribute encoding; use it (or :meth:`encode`) for new basins or grid cells."""
        self._check_fitted()
        return self._encoder  # type: ignore[return-value]

    @property
    def model(self) -> Any:
        """The fitted backend."""
        return self._model

    def _is_fitted(self) -> bool:
        return self._model is not None

    @classmethod
    def from_settings(cls, settings: Any) -> LargeSampleEmulator:
        """The unfitted emulator of an :class:`~lsegeo.emulators.settings.EmulatorSettings`.

        It takes the settings' ``backend``, ``seed``, ``threads`` and ``backend_options``.
        """
        return cls(backend=settings.backend, seed=settings.seed, n_jobs=settings.n_threads,
                   **dict(settings.backend_options))

    # -- fit / predict ------------------------------------------------------------------------
    def fit(self, ts: TrainingSet, client: Any = None) -> LargeSampleEmulator:
        """Fit on every row of a training set.

        Parameters
        ----------
        ts : TrainingSet
        client : distributed.Client, optional
            Unused (the backends use ``n_jobs`` threads); accepted so that every emulator's
            ``fit`` has the same signature.

        Returns
        -------
        LargeSampleEmulator
            ``self``.
        """
        if len(ts) == 0:
            raise ValueError("the training set has no rows (no member done with finite scores)")
        t0 = time.perf_counter()
        model = make_backend(self.backend, seed=self.seed, n_jobs=self.n_jobs, **self.options)
        model.fit(ts.features(), ts.target)
        self._model = model
        self._fitted_on(ts, ts.basins)
        self._attributes = np.asarray(ts.attributes, dtype=np.float64)
        self._encoder = ts.encoder
        self._skill = {"kind": self.kind, "backend": self.backend, "backend_options": model.config(),
                       "seed": self.seed, "training_rows": len(ts),
                       "training_basins": len(ts.basins_with_rows), "period": ts.period,
                       "fit_seconds": time.perf_counter() - t0}
        logger.debug("LSE (%s) fitted on %d rows of %d basins in %.1f s", self.backend, len(ts),
                    self._skill["training_basins"], self._skill["fit_seconds"])
        return self

    def _features(self, attr_rows: np.ndarray, u: np.ndarray) -> np.ndarray:
        """The model's input, parameters then attributes, built once in float32.

        Tree backends predict from float32 (as XGBoost stores every feature), so building the
        matrix in float32 saves a float64 copy and its conversion: about a quarter of the cost of
        a prediction for the optimiser's batches of 10^5 rows.
        """
        n_par = u.shape[1]
        X = np.empty((len(u), n_par + attr_rows.shape[1]), dtype=np.float32)
        X[:, :n_par] = u
        X[:, n_par:] = attr_rows
        return X

    def predict(self, basin_idx: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Predicted scores of rows ``(basin_idx[i], u[i])``.

        Parameters
        ----------
        basin_idx : numpy.ndarray
            ``(n,)`` int indices into :attr:`basins`.
        u : numpy.ndarray
            ``(n, n_params)`` parameters in the unit cube.

        Returns
        -------
        numpy.ndarray
            ``(n, n_targets)`` float64.
        """
        self._check_fitted()
        b, u = check_rows(basin_idx, u, len(self._basins), len(self._params))
        return self._model.predict(self._features(self._attributes[b], u))

    def predict_features(self, attr_rows: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Predicted scores from encoded attributes (basins or cells not in :attr:`basins`).

        Parameters
        ----------
        attr_rows : numpy.ndarray
            ``(n, n_attr)`` encoded attributes (:meth:`encode`), or one row ``(n_attr,)``
            shared by every row of ``u``.
        u : numpy.ndarray
            ``(n, n_params)`` parameters in the unit cube.

        Returns
        -------
        numpy.ndarray
            ``(n, n_targets)`` float64.
        """
        self._check_fitted()
        u = np.asarray(u, dtype=np.float64)
        if u.ndim == 1:
            u = u[None, :]
        if u.ndim != 2 or u.shape[1] != len(self._params):
            raise ValueError(f"u must be (n, {len(self._params)}), got shape {u.shape}")
        a = np.asarray(attr_rows, dtype=np.float64)
        if a.ndim == 1:
            a = np.broadcast_to(a, (len(u), a.shape[0]))
        n_attr = self._attributes.shape[1]
        if a.shape != (len(u), n_attr):
            raise ValueError(f"attr_rows must be ({len(u)}, {n_attr}) or ({n_attr},), got shape {a.shape}")
        return self._model.predict(self._features(a, u))

    def encode(self, attrs: Any) -> np.ndarray:
        """Encode attributes of new basins or cells (Dataset/DataFrame, one row each) like the training basins."""
        return self.encoder.transform(attrs)

    def set_threads(self, n_jobs: int) -> None:
        """Threads used for prediction."""
        self.n_jobs = max(1, int(n_jobs))
        if self._model is not None:
            self._model.set_threads(self.n_jobs)

    # -- saving -------------------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        """Write the emulator into ``directory`` (created; existing files of the same names replaced).

        Files: ``emulator.json`` (metadata, encoder, parameter space, skill),
        ``attributes.npz`` and the backend's own files (``.ubj`` boosters, or a torch
        ``state_dict`` and an ``.npz``).
        """
        self._check_fitted()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self._model.save(directory)
        save_npz(directory / "attributes.npz", attributes=self._attributes)
        write_meta(directory, {**self._core_meta(), "backend": self.backend,
                               "backend_options": self._model.config(), "encoder": self._encoder.to_dict(),
                               "attribute_names": self.attribute_names})
        return directory

    @classmethod
    def load(cls, directory: str | Path, n_jobs: int | None = None) -> LargeSampleEmulator:
        """Read an emulator written by :meth:`save`.

        Parameters
        ----------
        directory : path-like
        n_jobs : int, optional
            Threads for prediction; default the saved value, at most :func:`lsegeo.runtime.worker_threads`
            (the threads of the dask worker that loads it).
        """
        directory = Path(directory)
        meta = cls._read_own_meta(directory)
        n_jobs = n_jobs or min(meta.get("n_jobs", 1), worker_threads())
        em = cls(backend=meta["backend"], seed=meta["seed"], n_jobs=n_jobs,
                 **meta["backend_options"])
        model = make_backend(em.backend, seed=em.seed, n_jobs=em.n_jobs, **meta["backend_options"])
        model.load(directory, len(meta["target_names"]))
        em._model = model
        em._read_core(meta)
        em._encoder = AttributeEncoder.from_dict(meta["encoder"])
        em._attributes = load_npz(directory / "attributes.npz")["attributes"]
        return em

    def _repr_head(self) -> str:
        return f"backend={self.backend!r}"
