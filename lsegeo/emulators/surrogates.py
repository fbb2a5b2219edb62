"""The per-basin surrogates of the single-site emulator, and the fit of one basin.

For every basin and target, each candidate surrogate of ``u -> score`` (inputs in the unit cube)
is scored by K-fold cross-validated RMSE over the basin's members, and the best one is kept
(:func:`fit_basin`), as in Tang, Wood & Swenson (2025). Candidates are entries of
:data:`lsegeo.emulators.registry.SSE_CANDIDATES`:

``gp`` (:class:`GPCandidate`)
    A Gaussian process (Rasmussen & Williams 2006;
    :class:`sklearn.gaussian_process.GaussianProcessRegressor`) on the standardised target,
    kernel ``ConstantKernel(1, (1e-3, 1e3)) * Matern(nu=2.5, one length-scale per parameter,
    bounds [1e-3, 1e3]) + WhiteKernel(1e-2, (1e-6, 10))`` (R&W 2006, eq. 4.17) and
    ``alpha=1e-6``; hyperparameters by L-BFGS-B on the log marginal likelihood (R&W 2006,
    eq. 5.8; relative tolerance ``gp_ftol`` = 1e-5; ``gp_restarts`` = 0 extra random starts: on
    10 basins of the HBV ensemble one restart changed neither the choices nor the median CV RMSE
    and cost 20% more time; the study's upstream used 5). In the CV, each training fold
    re-optimises the hyperparameters starting from the full-data optimum for at most
    ``gp_cv_maxiter`` = 3 L-BFGS-B iterations (``gp_cv="warm"``, the default: ~0.54 s per basin
    of 200 members on one core, against 0.46 s for ``"fixed"``, which keeps the full-data
    hyperparameters and so flatters the GP a little, and ~1.5 s for ``"full"``, which
    re-optimises from scratch as the study did).
``rf`` (:class:`RFCandidate`)
    A random forest (Breiman 2001) in XGBoost's random-forest mode (Chen & Guestrin 2016;
    ``XGBRFRegressor``: 100 trees, each on a 0.632 subsample of the members with a third of the
    parameters tried at each split, depth up to 12: fully grown on ~200 members).

Everything a fit returns is plain numbers and bytes, so a GP is kept as its kernel
hyperparameters (``kernel_.theta``) and rebuilt with ``optimizer=None`` (:func:`rebuild_gp`, one
Cholesky factorisation), and a forest as its booster's ``save_raw("ubj")`` bytes.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from lsegeo.emulators.registry import SSE_CANDIDATES
from lsegeo.runtime import one_blas_thread, roomy_malloc

__all__ = ["SSE_DEFAULTS", "GPCandidate", "RFCandidate", "fit_basin", "gp_kernel", "rebuild_gp"]

#: Default settings of :class:`~lsegeo.emulators.sse.SingleSiteEmulator` (each may be given as a
#: keyword argument).
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

#: How the GP's hyperparameters are found in each CV training fold (see the module docstring).
GP_CV_MODES = ("warm", "fixed", "full")


def gp_kernel(n_params: int):
    """The GP kernel before fitting: constant x ARD Matern 5/2 + white noise, ``n_params`` length-scales."""
    from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

    return (ConstantKernel(1.0, (1e-3, 1e3))
            * Matern(length_scale=np.full(n_params, 0.5), length_scale_bounds=(1e-3, 1e3), nu=2.5)
            + WhiteKernel(noise_level=1e-2, noise_level_bounds=(1e-6, 1e1)))


def _lbfgs(ftol: float, maxiter: int = 15000) -> Callable:
    """An L-BFGS-B optimizer callable for ``GaussianProcessRegressor(optimizer=...)``."""
    from scipy.optimize import minimize

    def optimizer(obj_func, initial_theta, bounds):
        res = minimize(obj_func, initial_theta, method="L-BFGS-B", jac=True, bounds=bounds,
                       options={"ftol": ftol, "maxiter": maxiter})
        return res.x, res.fun

    return optimizer


def rebuild_gp(X: np.ndarray, ys: np.ndarray, theta: np.ndarray, alpha: float):
    """A fitted GP from hyperparameters, without optimisation (``optimizer=None``).

    Parameters
    ----------
    X : numpy.ndarray
        ``(n, n_params)`` unit-cube training inputs.
    ys : numpy.ndarray
        ``(n,)`` standardised targets.
    theta : numpy.ndarray
        Log-hyperparameters of :func:`gp_kernel` (``kernel_.theta`` of a fitted GP).
    alpha : float
        Added to the kernel matrix's diagonal.
    """
    from sklearn.gaussian_process import GaussianProcessRegressor

    kernel = gp_kernel(X.shape[1]).clone_with_theta(np.asarray(theta, dtype=np.float64))
    return GaussianProcessRegressor(kernel, alpha=alpha, optimizer=None, normalize_y=False).fit(X, ys)


def _standardise(y: np.ndarray) -> tuple[np.ndarray, float, float]:
    mean, std = float(np.mean(y)), float(np.std(y))
    std = std if std > 0 else 1.0
    return (y - mean) / std, mean, std


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


class GPCandidate:
    """The Gaussian-process candidate.

    A candidate has ``cross_val`` (out-of-fold predictions and a state), ``record`` (what it
    keeps in a basin's result) and ``predictor`` (a fitted surrogate rebuilt from the kept numbers).
    """

    name = "gp"

    @staticmethod
    def cross_val(X: np.ndarray, y: np.ndarray, folds: list, seed: int,
                  s: dict[str, Any]) -> tuple[np.ndarray, dict[str, Any]]:
        """Fit on all rows, then predict each fold from the others.

        Returns
        -------
        oof : numpy.ndarray
            ``(n,)`` out-of-fold predictions.
        state : dict
            ``theta`` (full-data hyperparameters), ``mean`` and ``std`` of ``y``.
        """
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
    def record(out: dict[str, Any], j: int, X: np.ndarray, y: np.ndarray, seed: int, s: dict[str, Any],
               state: dict[str, Any], chosen: bool) -> None:
        """Keep the hyperparameters and standardisation of target ``j`` (chosen or not)."""
        out["gp_theta"][j] = state["theta"]
        out["y_mean"][j], out["y_std"][j] = state["mean"], state["std"]

    @staticmethod
    def predictor(a: dict[str, np.ndarray], i: int, j: int, X: np.ndarray, Y: np.ndarray,
                  s: dict[str, Any]) -> _GPPredictor:
        """The GP of basin ``i``, target ``j``, rebuilt from its rows ``X``, ``Y`` and kept numbers ``a``."""
        mean, std = float(a["y_mean"][i, j]), float(a["y_std"][i, j])
        gp = rebuild_gp(X, (Y[:, j] - mean) / std, a["gp_theta"][i, j], s["gp_alpha"])
        return _GPPredictor(gp, mean, std)


class RFCandidate:
    """The random-forest candidate (XGBoost's random-forest mode, one thread)."""

    name = "rf"

    @staticmethod
    def _model(seed: int, s: dict[str, Any]):
        import xgboost as xgb

        return xgb.XGBRFRegressor(**s["rf"], random_state=seed, n_jobs=1)

    @classmethod
    def cross_val(cls, X: np.ndarray, y: np.ndarray, folds: list, seed: int,
                  s: dict[str, Any]) -> tuple[np.ndarray, dict[str, Any]]:
        """``(n,)`` out-of-fold predictions, and an empty state."""
        oof = np.empty(len(y))
        for tr, te in folds:
            m = cls._model(seed, s).fit(X[tr], y[tr])
            oof[te] = m.get_booster().inplace_predict(np.ascontiguousarray(X[te], dtype=np.float32))
        return oof, {}

    @classmethod
    def record(cls, out: dict[str, Any], j: int, X: np.ndarray, y: np.ndarray, seed: int, s: dict[str, Any],
               state: dict[str, Any], chosen: bool) -> None:
        """When chosen, fit the forest on every row and keep its booster's ``save_raw("ubj")`` bytes."""
        if chosen:
            booster = cls._model(seed, s).fit(X, y).get_booster()
            out["rf_raw"][j] = bytes(booster.save_raw("ubj"))

    @staticmethod
    def predictor(a: dict[str, np.ndarray], i: int, j: int, X: np.ndarray, Y: np.ndarray,
                  s: dict[str, Any]) -> _RFPredictor:
        """The forest of basin ``i``, target ``j``, from its bytes in ``a["rf_raw"]``."""
        k = i * a["choice"].shape[1] + j
        return _RFPredictor(a["rf_raw"][a["rf_offsets"][k]:a["rf_offsets"][k + 1]].tobytes())


def fit_basin(X: np.ndarray, Y: np.ndarray, seed: int, settings: dict[str, Any]) -> dict[str, Any]:
    """Fit the candidates of one basin and choose by CV RMSE (one dask task).

    Parameters
    ----------
    X : numpy.ndarray
        ``(n, n_params)`` unit-cube parameters of the basin's members.
    Y : numpy.ndarray
        ``(n, n_targets)`` scores.
    seed : int
        Seed of the folds (``KFold(n_folds, shuffle=True)``) and the models.
    settings : dict
        :data:`SSE_DEFAULTS` with overrides.

    Returns
    -------
    dict
        Plain numbers and bytes only: ``choice`` (candidate index per target), ``cv_rmse``
        ``(n_targets, n_candidates)``, ``oof`` ``(n, n_targets)`` out-of-fold predictions of the
        chosen candidate, ``gp_theta``/``y_mean``/``y_std`` per target, ``rf_raw`` per target
        (``b""`` unless the forest was chosen) and ``errors`` (messages of failed candidates).

    Raises
    ------
    RuntimeError
        Every candidate failed for a target.
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
    with one_blas_thread(), roomy_malloc(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning of hyperparameters at their bounds
        for j in range(T):
            y = Y[:, j]
            oofs, states = {}, {}
            for c, name in enumerate(cands):
                try:
                    oofs[name], states[name] = SSE_CANDIDATES.get(name).cross_val(X, y, folds, seed, settings)
                    out["cv_rmse"][j, c] = float(np.sqrt(np.mean((oofs[name] - y) ** 2)))
                except Exception as err:  # a failed candidate loses the choice, the other goes on
                    out["errors"].append(f"target {j} {name}: {type(err).__name__}: {err}")
            rmse = np.where(np.isfinite(out["cv_rmse"][j]), out["cv_rmse"][j], np.inf)
            if not np.isfinite(rmse).any():
                raise RuntimeError("every candidate surrogate failed: " + "; ".join(out["errors"]))
            c = int(np.argmin(rmse))
            out["choice"][j] = c
            out["oof"][:, j] = oofs[cands[c]]
            for name, state in states.items():
                SSE_CANDIDATES.get(name).record(out, j, X, y, seed, settings, state, chosen=name == cands[c])
    return out
