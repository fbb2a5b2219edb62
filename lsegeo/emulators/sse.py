"""Single-site emulators (SSE): one surrogate per basin, from the basin's own members.

For every basin and target, candidate surrogates of ``u -> score`` (inputs in the unit cube) --
a Gaussian process and a random forest by default (:mod:`lsegeo.emulators.surrogates`) -- are
compared by K-fold cross-validated RMSE over the basin's members, and the better one is kept, as
in Tang, Wood & Swenson (2025). The choice and the CV RMSE of every candidate are recorded per
basin and target (:meth:`SingleSiteEmulator.selection_table`).

Basins are independent tasks: ``fit(ts, client=client)`` runs them on dask, otherwise in this
process; each task limits BLAS to one thread (:func:`lsegeo.runtime.one_blas_thread`: small
matrices are many times slower with several BLAS threads competing).

Saving without pickle: a GP is kept as its kernel hyperparameters (``kernel_.theta``) with its
training inputs, targets and standardisation (``.npz``), and rebuilt with ``optimizer=None``
(one Cholesky factorisation) -- by :meth:`~SingleSiteEmulator.fit` too, so a fitted and a loaded
emulator predict identically; a forest as its booster's ``save_raw("ubj")`` bytes (``.npz`` of
uint8).
"""

from __future__ import annotations

import logging
import time
import uuid
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from lsegeo.emulators.archive import load_npz, save_npz, write_meta
from lsegeo.emulators.core import EmulatorCore, check_rows
from lsegeo.emulators.features import TrainingSet
from lsegeo.emulators.registry import SSE_CANDIDATES
from lsegeo.emulators.surrogates import GP_CV_MODES, SSE_DEFAULTS, fit_basin
from lsegeo.runtime import one_blas_thread

__all__ = ["SingleSiteEmulator"]

logger = logging.getLogger(__name__)


def _basin_seed(seed: int, basin: str) -> int:
    return int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, zlib.crc32(basin.encode())]).generate_state(1)[0])


class SingleSiteEmulator(EmulatorCore):
    """One surrogate per basin and target (GP or random forest, chosen by CV RMSE).

    Parameters
    ----------
    seed : int
        Seed of the folds and models (each basin's seed derives from it and the gauge id).
    n_jobs : int
        Unused by the fit (parallel through ``fit(..., client=)``); kept for a uniform
        constructor.
    **settings
        Overrides of :data:`~lsegeo.emulators.surrogates.SSE_DEFAULTS`: ``candidates``
        (``["gp", "rf"]``, ``["gp"]``, ...: names in
        :data:`~lsegeo.emulators.registry.SSE_CANDIDATES`), ``n_folds``, ``min_rows`` (basins
        with fewer rows get no surrogate), ``gp_restarts``, ``gp_alpha``, ``gp_ftol``, ``gp_cv``
        (``"warm"``, ``"fixed"``, ``"full"``), ``gp_cv_maxiter``, ``rf`` (``XGBRFRegressor``
        arguments).

    Raises
    ------
    TypeError
        An unknown setting.
    KeyError
        An unknown candidate, or none.
    ValueError
        An unknown ``gp_cv`` mode.
    """

    kind = "sse"
    _unknown_basins = "have no single-site surrogate"

    def __init__(self, seed: int = 0, n_jobs: int = 1, **settings: Any) -> None:
        unknown = set(settings) - set(SSE_DEFAULTS)
        if unknown:
            raise TypeError(f"unknown SSE setting(s) {sorted(unknown)}; known: {', '.join(SSE_DEFAULTS)}")
        self._init_core(seed, n_jobs)
        s = {**SSE_DEFAULTS, **settings}
        s["rf"] = {**SSE_DEFAULTS["rf"], **settings.get("rf", {})}
        s["candidates"] = list(s["candidates"])
        bad = [c for c in s["candidates"] if c not in SSE_CANDIDATES]
        if bad or not s["candidates"]:
            raise KeyError(f"unknown SSE candidate(s) {bad}; known: {', '.join(SSE_CANDIDATES.names())}")
        if s["gp_cv"] not in GP_CV_MODES:
            raise ValueError(f"gp_cv must be 'warm', 'fixed' or 'full', got {s['gp_cv']!r}")
        self.settings = s
        self._fitted = False
        self._models: list[list[Any]] = []
        self._arrays: dict[str, np.ndarray] = {}

    # -- properties ---------------------------------------------------------------------------
    @property
    def choice(self) -> np.ndarray:
        """``(n_basins, n_targets)`` name of the chosen candidate."""
        self._check_fitted()
        return np.array(self.settings["candidates"], dtype=object)[self._arrays["choice"]]

    @property
    def cv_rmse(self) -> np.ndarray:
        """``(n_basins, n_targets, n_candidates)`` CV RMSE of each candidate (NaN: it failed)."""
        self._check_fitted()
        return self._arrays["cv_rmse"]

    def _is_fitted(self) -> bool:
        return self._fitted

    @classmethod
    def from_settings(cls, settings: Any) -> SingleSiteEmulator:
        """The unfitted emulator of an :class:`~lsegeo.emulators.settings.EmulatorSettings`.

        It takes the settings' ``seed``, ``threads`` and ``backend_options`` (as SSE settings).
        """
        return cls(seed=settings.seed, n_jobs=settings.n_threads, **dict(settings.backend_options))

    def selection_table(self):
        """A :class:`pandas.DataFrame` of the choice and the CV RMSE per basin and target."""
        import pandas as pd

        self._check_fitted()
        rows = []
        for i, b in enumerate(self._basins):
            for j, t in enumerate(self._targets):
                row = {"basin": b, "target": t, "choice": self.choice[i, j]}
                row.update({f"cv_rmse_{c}": self.cv_rmse[i, j, k] for k, c in enumerate(self.settings["candidates"])})
                rows.append(row)
        return pd.DataFrame(rows)

    # -- fit ----------------------------------------------------------------------------------
    def fit(self, ts: TrainingSet, client: Any = None) -> SingleSiteEmulator:
        """Fit and choose the surrogates of every basin with at least ``min_rows`` rows.

        Parameters
        ----------
        ts : TrainingSet
        client : distributed.Client, optional
            Fit the basins as dask tasks (one per basin) on this client; otherwise one after
            the other in this process.

        Returns
        -------
        SingleSiteEmulator
            ``self``.
        """
        t0 = time.perf_counter()
        order = np.argsort(ts.basin_index, kind="stable")
        cuts = np.flatnonzero(np.diff(ts.basin_index[order])) + 1
        groups = [g for g in np.split(order, cuts) if len(g)]
        min_rows = max(int(self.settings["min_rows"]), int(self.settings["n_folds"]))
        keep = [g for g in groups if len(g) >= min_rows]
        skipped = [ts.basins[int(ts.basin_index[g[0]])] for g in groups if len(g) < min_rows]
        no_rows = sorted(set(range(len(ts.basins))) - set(np.unique(ts.basin_index).tolist()))
        if not keep:
            raise ValueError(f"no basin has at least {min_rows} rows to fit a single-site emulator")
        names = [ts.basins[int(ts.basin_index[g[0]])] for g in keep]
        jobs = [(ts.params_unit[g], ts.target[g], _basin_seed(self.seed, b)) for g, b in zip(keep, names, strict=True)]
        if client is None:
            results = [fit_basin(X, Y, s, self.settings) for X, Y, s in jobs]
        else:
            tag = uuid.uuid4().hex[:8]
            futures = [client.submit(fit_basin, X, Y, s, self.settings, pure=False, key=f"sse-fit-{b}-{tag}")
                       for (X, Y, s), b in zip(jobs, names, strict=True)]
            try:
                results = client.gather(futures)
            except BaseException:
                client.cancel(futures)
                raise
        offsets = np.concatenate([[0], np.cumsum([len(g) for g in keep])]).astype(np.int64)
        rf_raw = [r["rf_raw"][j] for r in results for j in range(ts.target.shape[1])]
        self._arrays = {
            "X": np.concatenate([j[0] for j in jobs]), "Y": np.concatenate([j[1] for j in jobs]),
            "offsets": offsets,
            "choice": np.stack([r["choice"] for r in results]),
            "cv_rmse": np.stack([r["cv_rmse"] for r in results]),
            "gp_theta": np.stack([r["gp_theta"] for r in results]),
            "y_mean": np.stack([r["y_mean"] for r in results]),
            "y_std": np.stack([r["y_std"] for r in results]),
            "rf_raw": np.frombuffer(b"".join(rf_raw), dtype=np.uint8).copy(),
            "rf_offsets": np.concatenate([[0], np.cumsum([len(r) for r in rf_raw])]).astype(np.int64),
        }
        self._fitted_on(ts, names)
        self._build()
        self._fitted = True

        from lsegeo.emulators.skill import skill_metrics

        oof = np.concatenate([r["oof"] for r in results])
        b_idx = np.repeat(np.arange(len(keep)), np.diff(offsets))
        cands = self.settings["candidates"]
        choice_names = self.choice
        errors = {b: r["errors"] for b, r in zip(names, results, strict=True) if r["errors"]}
        self._skill = {
            "kind": self.kind, "backend": "+".join(cands), "seed": self.seed, "n_folds": int(self.settings["n_folds"]),
            "training_rows": int(offsets[-1]), "training_basins": len(names), "period": ts.period,
            "skipped_basins": skipped, "basins_without_rows": [ts.basins[i] for i in no_rows],
            "chosen": {t: {c: int((choice_names[:, j] == c).sum()) for c in cands}
                       for j, t in enumerate(self._targets)},
            "median_cv_rmse": {t: {c: float(np.nanmedian(self.cv_rmse[:, j, k])) for k, c in enumerate(cands)}
                               for j, t in enumerate(self._targets)},
            "selection_cv": skill_metrics(b_idx, self._arrays["Y"], oof, self._targets),
            "candidate_errors": errors,
            "settings": self.settings,
            "fit_seconds": time.perf_counter() - t0,
        }
        logger.debug("SSE (%s) fitted on %d rows of %d basins in %.1f s (%d basins skipped, fewer than %d rows)",
                    "+".join(cands), int(offsets[-1]), len(names), self._skill["fit_seconds"], len(skipped), min_rows)
        return self

    def _build(self) -> None:
        """Rebuild the in-memory surrogates from the stored numbers (used by fit and load alike)."""
        a = self._arrays
        cands = [SSE_CANDIDATES.get(c) for c in self.settings["candidates"]]
        models: list[list[Any]] = []
        with one_blas_thread():
            for i in range(len(self._basins)):
                X = a["X"][a["offsets"][i]:a["offsets"][i + 1]]
                Y = a["Y"][a["offsets"][i]:a["offsets"][i + 1]]
                models.append([cands[int(a["choice"][i, j])].predictor(a, i, j, X, Y, self.settings)
                               for j in range(len(self._targets))])
        self._models = models

    # -- predict ------------------------------------------------------------------------------
    def predict(self, basin_idx: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Predicted scores of rows ``(basin_idx[i], u[i])``, each by its basin's surrogates.

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
        out = np.empty((len(u), len(self._targets)))
        if len(u) == 0:
            return out
        order = np.argsort(b, kind="stable")
        cuts = np.flatnonzero(np.diff(b[order])) + 1
        with one_blas_thread():
            for rows in np.split(order, cuts):
                models = self._models[int(b[rows[0]])]
                x = u[rows]
                for j, m in enumerate(models):
                    out[rows, j] = m.predict(x)
        return out

    def predict_features(self, attr_rows: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Not available: a single-site emulator knows only the basins it was fitted on."""
        raise NotImplementedError("a single-site emulator cannot predict unseen basins from attributes; "
                                  "use the large-sample emulator (LargeSampleEmulator) for regionalization")

    # -- saving -------------------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        """Write ``emulator.json`` and ``sse_surrogates.npz`` into ``directory``.

        The ``.npz`` holds the training data, GP hyperparameters, standardisation, choices, CV RMSE
        and the forests' ``save_raw("ubj")`` bytes.
        """
        self._check_fitted()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        save_npz(directory / "sse_surrogates.npz", **self._arrays)
        write_meta(directory, {**self._core_meta(), "settings": self.settings})
        return directory

    @classmethod
    def load(cls, directory: str | Path, n_jobs: int | None = None) -> SingleSiteEmulator:
        """Read an emulator written by :meth:`save` (GPs are rebuilt with ``optimizer=None``)."""
        directory = Path(directory)
        meta = cls._read_own_meta(directory)
        em = cls(seed=meta["seed"], n_jobs=n_jobs or meta.get("n_jobs", 1), **meta["settings"])
        em._arrays = load_npz(directory / "sse_surrogates.npz")
        em._read_core(meta)
        em._build()
        em._fitted = True
        return em

    def _repr_head(self) -> str:
        return "+".join(self.settings["candidates"])
