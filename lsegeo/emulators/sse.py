"""Single-site emulators (SSE): one surrogate per basin, from the basin's own members.

For every basin and target, two candidate surrogates of ``u -> score`` (inputs in the unit cube)
are compared by K-fold cross-validated RMSE (``KFold(n_folds, shuffle=True)`` over the
basin's members), and the better one is kept, as in Tang, Wood & Swenson (2025):

``gp``
    A Gaussian process (:class:`sklearn.gaussian_process.GaussianProcessRegressor`) on the
    standardised target, kernel ``ConstantKernel(1, (1e-3, 1e3)) * Matern(nu=2.5, one
    length-scale per parameter, bounds [1e-3, 1e3]) + WhiteKernel(1e-2, (1e-6, 10))`` and
    ``alpha=1e-6``; hyperparameters by L-BFGS-B on the log marginal likelihood (relative
    tolerance ``gp_ftol`` = 1e-5; ``gp_restarts`` = 0 extra random starts: on 10 basins of the
    HBV ensemble one restart changed neither the choices nor the median CV RMSE and cost 20%
    more time; the study's upstream used 5). In the CV, each training fold re-optimises the
    hyperparameters starting from the full-data optimum for at most ``gp_cv_maxiter`` = 3
    L-BFGS-B iterations (``gp_cv="warm"``, the default: ~0.54 s per basin of 200 members on
    one core, against 0.46 s for ``"fixed"``, which keeps the full-data hyperparameters and
    so flatters the GP a little, and ~1.5 s for ``"full"``, which re-optimises from scratch as
    the study did).
``rf``
    A random forest in XGBoost's random-forest mode (``XGBRFRegressor``: 100 trees, each on
    a 0.632 subsample of the members with a third of the parameters tried at each split,
    depth up to 12: fully grown on ~200 members).

The choice and the CV RMSE of both candidates are recorded per basin and target
(:meth:`SingleSiteEmulator.selection_table`). Basins are independent tasks: ``fit(ts,
client=client)`` runs them on dask, otherwise in this process; each task limits BLAS to one
thread (small matrices are many times slower with several BLAS threads competing).

Saving without pickle: a GP is kept as its kernel hyperparameters (``kernel_.theta``) with its
training inputs, targets and standardisation (``.npz``), and rebuilt with ``optimizer=None``
(one Cholesky factorisation) — by :meth:`fit` too, so a fitted and a loaded emulator predict
identically; a forest as its booster's ``save_raw("ubj")`` bytes (``.npz`` of uint8).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
import time
import uuid
import warnings
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from lsegeo.emulators import base
from lsegeo.emulators.features import TrainingSet
from lsegeo.emulators.lse import space_from_dict, space_to_dict

__all__ = ["SSE_DEFAULTS", "CANDIDATES", "SingleSiteEmulator", "fit_basin", "gp_kernel", "rebuild_gp"]

#: Default settings of :class:`SingleSiteEmulator` (each may be given as a keyword argument).
SSE_DEFAULTS: dict[str, Any] = {
    "candidates": ["gp", "rf"],
    "n_folds": 5,
    "min_rows": 10,
    "gp_restarts": 0,
    "gp_alpha": 1e-6,
    "gp_ftol": 1e-5,
    "gp_cv": "warm",
    "gp_cv_maxiter": 3,
    "rf": {"n_estimators": 100, "max_depth": 12, "subsample": 0.632, "colsample_bynode": 0.33,
           "learning_rate": 1.0, "reg_lambda": 1e-5, "min_child_weight": 1.0, "tree_method": "hist",
           "max_bin": 64},
}

_CONTROLLER: Any = None
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc mallopt parameters


@contextlib.contextmanager
def _roomy_malloc():
    """Keep numpy's medium-sized temporaries on the heap while fitting (glibc only).

    dask's nanny starts its workers with ``MALLOC_TRIM_THRESHOLD_=65536``; with that variable set
    glibc stops adapting its mmap threshold, so every array above 128 KiB (the GP's kernel
    gradients are ~4.5 MB) is mapped and unmapped again at each likelihood evaluation, which
    made the GP fits 2.4 times slower in dask workers. While fitting, the mmap and trim
    thresholds are raised; afterwards they are set back and the heap trimmed, as dask wants.
    """
    trim = os.environ.get("MALLOC_TRIM_THRESHOLD_")
    libc = None
    if trim is not None and sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL("libc.so.6")
        except OSError:
            libc = None
    if libc is None:
        yield
        return
    libc.mallopt(_M_MMAP_THRESHOLD, 32 * 2**20)
    libc.mallopt(_M_TRIM_THRESHOLD, 512 * 2**20)
    try:
        yield
    finally:
        try:
            libc.mallopt(_M_TRIM_THRESHOLD, int(trim))
        except ValueError:
            pass
        libc.mallopt(_M_MMAP_THRESHOLD, 128 * 2**10)
        libc.malloc_trim(0)


def _one_blas_thread():
    """Context manager limiting BLAS/OpenMP pools to one thread (controller built once)."""
    global _CONTROLLER
    from threadpoolctl import ThreadpoolController

    if _CONTROLLER is None:
        _CONTROLLER = ThreadpoolController()
    return _CONTROLLER.limit(limits=1)


def gp_kernel(n_params: int):
    """The GP kernel before fitting: constant x ARD Matern 5/2 + white noise."""
    from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

    return (ConstantKernel(1.0, (1e-3, 1e3))
            * Matern(length_scale=np.full(n_params, 0.5), length_scale_bounds=(1e-3, 1e3), nu=2.5)
            + WhiteKernel(noise_level=1e-2, noise_level_bounds=(1e-6, 1e1)))


def _lbfgs(ftol: float, maxiter: int = 15000) -> Callable:
    """An L-BFGS-B optimizer callable for GaussianProcessRegressor."""
    from scipy.optimize import minimize

    def optimizer(obj_func, initial_theta, bounds):
        res = minimize(obj_func, initial_theta, method="L-BFGS-B", jac=True, bounds=bounds,
                       options={"ftol": ftol, "maxiter": maxiter})
        return res.x, res.fun

    return optimizer


def rebuild_gp(X: np.ndarray, ys: np.ndarray, theta: np.ndarray, alpha: float):
    """A fitted GP from hyperparameters, without optimisation (``optimizer=None``)."""
    from sklearn.gaussian_process import GaussianProcessRegressor

    kernel = gp_kernel(X.shape[1]).clone_with_theta(np.asarray(theta, dtype=np.float64))
    return GaussianProcessRegressor(kernel, alpha=alpha, optimizer=None, normalize_y=False).fit(X, ys)


def _standardise(y: np.ndarray) -> tuple[np.ndarray, float, float]:
    mean, std = float(np.mean(y)), float(np.std(y))
    std = std if std > 0 else 1.0
    return (y - mean) / std, mean, std


class _GPCandidate:
    """Gaussian process candidate."""

    name = "gp"

    @staticmethod
    def cross_val(X, y, folds, seed, s) -> tuple[np.ndarray, dict[str, Any]]:
        from sklearn.gaussian_process import GaussianProcessRegressor

        ys, mean, std = _standardise(y)
        gp = GaussianProcessRegressor(gp_kernel(X.shape[1]), alpha=s["gp_alpha"], optimizer=_lbfgs(s["gp_ftol"]),
                                      n_restarts_optimizer=int(s["gp_restarts"]), normalize_y=False,
                                      random_state=seed).fit(X, ys)
        theta = gp.kernel_.theta.copy()
        oof = np.empty(len(y))
        mode = s["gp_cv"]
        for tr, te in folds:
            yt, m, sd = _standardise(y[tr])
            if mode == "fixed":
                g = rebuild_gp(X[tr], yt, theta, s["gp_alpha"])
            else:
                start = gp.kernel_ if mode == "warm" else gp_kernel(X.shape[1])
                opt = _lbfgs(s["gp_ftol"], int(s["gp_cv_maxiter"]) if mode == "warm" else 15000)
                g = GaussianProcessRegressor(start, alpha=s["gp_alpha"], optimizer=opt, normalize_y=False,
                                             n_restarts_optimizer=0 if mode == "warm" else int(s["gp_restarts"]),
                                             random_state=seed).fit(X[tr], yt)
            oof[te] = g.predict(X[te]) * sd + m
        return oof, {"theta": theta, "mean": mean, "std": std}

    @staticmethod
    def final(X, y, seed, s, state) -> dict[str, Any]:
        return state


class _RFCandidate:
    """XGBoost random-forest candidate."""

    name = "rf"

    @staticmethod
    def _model(seed, s):
        import xgboost as xgb

        return xgb.XGBRFRegressor(**s["rf"], random_state=seed, n_jobs=1)

    @classmethod
    def cross_val(cls, X, y, folds, seed, s) -> tuple[np.ndarray, dict[str, Any]]:
        oof = np.empty(len(y))
        for tr, te in folds:
            m = cls._model(seed, s).fit(X[tr], y[tr])
            oof[te] = m.get_booster().inplace_predict(np.ascontiguousarray(X[te], dtype=np.float32))
        return oof, {}

    @classmethod
    def final(cls, X, y, seed, s, state) -> dict[str, Any]:
        booster = cls._model(seed, s).fit(X, y).get_booster()
        return {"raw": bytes(booster.save_raw("ubj"))}


#: SSE candidate surrogates by name.
CANDIDATES: dict[str, Any] = {"gp": _GPCandidate, "rf": _RFCandidate}


def fit_basin(X: np.ndarray, Y: np.ndarray, seed: int, settings: dict[str, Any]) -> dict[str, Any]:
    """Fit the candidates of one basin, choose by CV RMSE (one dask task).

    Parameters
    ----------
    X : numpy.ndarray
        ``(n, n_params)`` unit-cube parameters of the basin's members.
    Y : numpy.ndarray
        ``(n, n_targets)`` scores.
    seed : int
        Seed of the folds and the models.
    settings : dict
        :data:`SSE_DEFAULTS` with overrides.

    Returns
    -------
    dict
        Plain numbers and bytes only: ``choice`` (candidate index per target), ``cv_rmse``
        ``(n_targets, n_candidates)``, ``oof`` ``(n, n_targets)`` out-of-fold predictions of the
        chosen candidate, ``gp_theta``/``y_mean``/``y_std`` per target, ``rf_raw`` per target
        (``b""`` unless the forest was chosen) and ``errors`` (messages of failed candidates).
    """
    from sklearn.model_selection import KFold

    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64).reshape(len(X), -1)
    cands = list(settings["candidates"])
    n_theta = len(gp_kernel(X.shape[1]).theta)
    T = Y.shape[1]
    out = {"choice": np.zeros(T, dtype=np.int64), "cv_rmse": np.full((T, len(cands)), np.nan),
           "oof": np.full(Y.shape, np.nan), "gp_theta": np.full((T, n_theta), np.nan),
           "y_mean": np.zeros(T), "y_std": np.ones(T), "rf_raw": [b""] * T, "errors": []}
    folds = list(KFold(int(settings["n_folds"]), shuffle=True, random_state=seed).split(X))
    with _one_blas_thread(), _roomy_malloc(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning of hyperparameters at their bounds
        for j in range(T):
            y = Y[:, j]
            oofs, states = {}, {}
            for c, name in enumerate(cands):
                try:
                    oofs[name], states[name] = CANDIDATES[name].cross_val(X, y, folds, seed, settings)
                    out["cv_rmse"][j, c] = float(np.sqrt(np.mean((oofs[name] - y) ** 2)))
                except Exception as err:  # a failed candidate loses the choice, the other goes on
                    out["errors"].append(f"target {j} {name}: {type(err).__name__}: {err}")
            rmse = np.where(np.isfinite(out["cv_rmse"][j]), out["cv_rmse"][j], np.inf)
            if not np.isfinite(rmse).any():
                raise RuntimeError("every candidate surrogate failed: " + "; ".join(out["errors"]))
            c = int(np.argmin(rmse))
            name = cands[c]
            out["choice"][j] = c
            out["oof"][:, j] = oofs[name]
            if "gp" in states:
                out["gp_theta"][j] = states["gp"]["theta"]
                out["y_mean"][j], out["y_std"][j] = states["gp"]["mean"], states["gp"]["std"]
            final = CANDIDATES[name].final(X, y, seed, settings, states[name])
            if name == "rf":
                out["rf_raw"][j] = final["raw"]
    return out


class _GPPredictor:
    def __init__(self, gp, mean: float, std: float) -> None:
        self.gp, self.mean, self.std = gp, mean, std

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.gp.predict(X) * self.std + self.mean


class _RFPredictor:
    def __init__(self, raw: bytes) -> None:
        import xgboost as xgb

        self.booster = xgb.Booster(model_file=bytearray(raw))
        self.booster.set_param({"nthread": 1})

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(self.booster.inplace_predict(np.ascontiguousarray(X, dtype=np.float32)), dtype=np.float64)


def _basin_seed(seed: int, basin: str) -> int:
    return int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, zlib.crc32(basin.encode())]).generate_state(1)[0])


class SingleSiteEmulator(base.EmulatorCore):
    """One surrogate per basin and target (GP or random forest, chosen by CV RMSE).

    Parameters
    ----------
    seed : int
        Seed of the folds and models (each basin's seed derives from it and the gauge id).
    n_jobs : int
        Unused by the fit (parallel through ``fit(..., client=)``); kept for a uniform
        constructor.
    **settings
        Overrides of :data:`SSE_DEFAULTS`: ``candidates`` (``["gp", "rf"]``, ``["gp"]``, ...),
        ``n_folds``, ``min_rows`` (basins with fewer rows get no surrogate), ``gp_restarts``,
        ``gp_alpha``, ``gp_ftol``, ``gp_cv`` (``"warm"``, ``"fixed"``, ``"full"``),
        ``gp_cv_maxiter``, ``rf`` (``XGBRFRegressor`` arguments).
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
        bad = [c for c in s["candidates"] if c not in CANDIDATES]
        if bad or not s["candidates"]:
            raise KeyError(f"unknown SSE candidate(s) {bad}; known: {', '.join(CANDIDATES)}")
        if s["gp_cv"] not in ("warm", "fixed", "full"):
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
        jobs = [(ts.params_unit[g], ts.target[g], _basin_seed(self.seed, b)) for g, b in zip(keep, names)]
        if client is None:
            results = [fit_basin(X, Y, s, self.settings) for X, Y, s in jobs]
        else:
            tag = uuid.uuid4().hex[:8]
            futures = [client.submit(fit_basin, X, Y, s, self.settings, pure=False, key=f"sse-fit-{b}-{tag}")
                       for (X, Y, s), b in zip(jobs, names)]
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
        self._basins = names
        self._params = list(ts.param_names)
        self._targets = list(ts.target_names)
        self._senses = list(ts.target_senses)
        self._space = ts.space
        self._period = ts.period
        self._build()
        self._fitted = True

        from lsegeo.emulators.skill import skill_metrics

        oof = np.concatenate([r["oof"] for r in results])
        b_idx = np.repeat(np.arange(len(keep)), np.diff(offsets))
        cands = self.settings["candidates"]
        choice_names = self.choice
        errors = {b: r["errors"] for b, r in zip(names, results) if r["errors"]}
        self._skill = {
            "kind": self.kind, "backend": "+".join(cands), "seed": self.seed, "n_folds": int(self.settings["n_folds"]),
            "training_rows": int(offsets[-1]), "training_basins": len(names), "period": ts.period,
            "skipped_basins": skipped, "basins_without_rows": [ts.basins[i] for i in no_rows],
            "chosen": {t: {c: int((choice_names[:, j] == c).sum()) for c in cands} for j, t in enumerate(self._targets)},
            "median_cv_rmse": {t: {c: float(np.nanmedian(self.cv_rmse[:, j, k])) for k, c in enumerate(cands)}
                               for j, t in enumerate(self._targets)},
            "selection_cv": skill_metrics(b_idx, self._arrays["Y"], oof, self._targets),
            "candidate_errors": errors,
            "settings": self.settings,
            "fit_seconds": time.perf_counter() - t0,
        }
        return self

    def _build(self) -> None:
        """Rebuild the in-memory surrogates from the stored numbers (used by fit and load alike)."""
        a = self._arrays
        cands = self.settings["candidates"]
        T = len(self._targets)
        models: list[list[Any]] = []
        with _one_blas_thread():
            for i in range(len(self._basins)):
                X = a["X"][a["offsets"][i]:a["offsets"][i + 1]]
                Y = a["Y"][a["offsets"][i]:a["offsets"][i + 1]]
                row = []
                for j in range(T):
                    name = cands[int(a["choice"][i, j])]
                    if name == "gp":
                        mean, std = float(a["y_mean"][i, j]), float(a["y_std"][i, j])
                        gp = rebuild_gp(X, (Y[:, j] - mean) / std, a["gp_theta"][i, j], self.settings["gp_alpha"])
                        row.append(_GPPredictor(gp, mean, std))
                    else:
                        k = i * T + j
                        row.append(_RFPredictor(a["rf_raw"][a["rf_offsets"][k]:a["rf_offsets"][k + 1]].tobytes()))
                models.append(row)
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
        b, u = base.check_rows(basin_idx, u, len(self._basins), len(self._params))
        out = np.empty((len(u), len(self._targets)))
        if len(u) == 0:
            return out
        order = np.argsort(b, kind="stable")
        cuts = np.flatnonzero(np.diff(b[order])) + 1
        with _one_blas_thread():
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
        """Write ``emulator.json`` and ``sse_surrogates.npz`` (training data, GP hyperparameters,
        standardisation, choices, CV RMSE and the forests' ``save_raw("ubj")`` bytes)."""
        self._check_fitted()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        base.save_npz(directory / "sse_surrogates.npz", **self._arrays)
        base.write_meta(directory, {
            "kind": self.kind, "seed": self.seed, "n_jobs": self.n_jobs, "settings": self.settings,
            "basins": self._basins, "param_names": self._params, "target_names": self._targets,
            "target_senses": self._senses, "period": self._period,
            "space": space_to_dict(self._space), "skill": self._skill})
        return directory

    @classmethod
    def load(cls, directory: str | Path, n_jobs: int | None = None) -> SingleSiteEmulator:
        """Read an emulator written by :meth:`save` (GPs are rebuilt with ``optimizer=None``)."""
        directory = Path(directory)
        meta = base.read_meta(directory)
        if meta["kind"] != cls.kind:
            raise ValueError(f"{directory} holds a {meta['kind']!r} emulator, not {cls.kind!r}")
        em = cls(seed=meta["seed"], n_jobs=n_jobs or meta.get("n_jobs", 1), **meta["settings"])
        em._arrays = base.load_npz(directory / "sse_surrogates.npz")
        em._basins = [str(b) for b in meta["basins"]]
        em._params = list(meta["param_names"])
        em._targets = list(meta["target_names"])
        em._senses = list(meta.get("target_senses", []))
        em._period = meta.get("period", "")
        em._space = space_from_dict(meta["space"])
        em._skill = dict(meta.get("skill", {}))
        em._build()
        em._fitted = True
        return em

    def to_bytes(self) -> bytes:
        """The saved directory as a zip archive (:func:`lsegeo.emulators.base.load_bytes` reads it)."""
        return base.to_bytes(self)

    def __repr__(self) -> str:
        state = (f"{len(self._basins)} basins, {len(self._params)} parameters, targets {self._targets}"
                 if self._fitted else "not fitted")
        return f"SingleSiteEmulator({'+'.join(self.settings['candidates'])}, {state})"

    def describe(self) -> str:
        """Fit information, choices and skill, printable."""
        from lsegeo.emulators.skill import format_skill

        return f"{self!r}\n{format_skill(self._skill)}"
