"""Tree-ensemble backends of the large-sample emulator, on XGBoost.

* ``xgboost`` (:class:`XGBoostBackend`): gradient-boosted trees (Chen & Guestrin 2016, XGBoost:
  A scalable tree boosting system, KDD), ``xgboost.XGBRegressor`` with the histogram method;
  defaults 600 trees, depth 8, learning rate 0.05, row and column subsampling 0.8.
* ``random_forest`` (:class:`XGBRandomForestBackend`): a random forest (Breiman 2001, Random
  forests, Machine Learning 45) in XGBoost's random-forest mode (``xgboost.XGBRFRegressor``: one
  boosting round of ``n_estimators`` parallel trees, learning rate 1), for parity with the
  study's ``RandomForestRegressor(100 trees, depth 40)``: 100 trees, depth 20, each tree on a
  0.632 subsample of the rows, a third of the features tried at each split. ``max_bin`` is 32:
  with XGBoost's histogram method deep trees cost per node and per histogram bin (depth 20 with
  256 bins is ~12x slower than with 32).

One model per target. Models are saved with ``Booster.save_model`` (``.ubj``) and predicted
with ``Booster.inplace_predict``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np

__all__ = ["XGBoostBackend", "XGBRandomForestBackend"]


class XGBoostBackend:
    """Gradient-boosted trees (``xgboost.XGBRegressor``), one per target.

    Parameters
    ----------
    seed : int
        ``random_state`` of every model.
    n_jobs : int
        Threads for fitting and prediction.
    **options
        Any ``XGBRegressor`` argument; they override :attr:`DEFAULTS`.
    """

    name = "xgboost"
    estimator = "XGBRegressor"
    DEFAULTS: ClassVar[dict[str, Any]] = {"n_estimators": 600, "max_depth": 8, "learning_rate": 0.05, "subsample": 0.8,
                                "colsample_bytree": 0.8, "min_child_weight": 1.0, "tree_method": "hist",
                                "max_bin": 256}

    def __init__(self, seed: int = 0, n_jobs: int = 1, **options: Any) -> None:
        self.seed = int(seed)
        self.n_jobs = max(1, int(n_jobs))
        self.options = {**self.DEFAULTS, **options}
        self.boosters: list[Any] = []

    def fit(self, X: np.ndarray, Y: np.ndarray) -> XGBoostBackend:
        """Fit one model per column of ``Y`` ``(n, n_targets)`` on features ``X`` ``(n, n_features)``."""
        import xgboost as xgb

        cls = getattr(xgb, self.estimator)
        X = np.ascontiguousarray(X, dtype=np.float32)
        Y = np.asarray(Y, dtype=np.float64).reshape(len(X), -1)
        self.boosters = []
        for j in range(Y.shape[1]):
            model = cls(**self.options, random_state=self.seed, n_jobs=self.n_jobs)
            model.fit(X, Y[:, j])
            self.boosters.append(model.get_booster())
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        """``(n, n_targets)`` float64 predictions of features ``X`` ``(n, n_features)`` (read as float32)."""
        if not self.boosters:
            raise RuntimeError("the backend is not fitted")
        X = np.ascontiguousarray(X, dtype=np.float32)
        if len(X) == 0:
            return np.zeros((0, len(self.boosters)))
        return np.column_stack([np.asarray(b.inplace_predict(X), dtype=np.float64) for b in self.boosters])

    def _file(self, directory: Path, j: int) -> Path:
        return Path(directory) / f"{self.name}_target{j}.ubj"

    def save(self, directory: Path) -> None:
        """Write each booster with ``save_model`` (UBJSON)."""
        for j, b in enumerate(self.boosters):
            b.save_model(str(self._file(directory, j)))

    def load(self, directory: Path, n_targets: int) -> None:
        """Read the boosters written by :meth:`save`."""
        import xgboost as xgb

        self.boosters = []
        for j in range(n_targets):
            b = xgb.Booster(model_file=str(self._file(directory, j)))
            b.set_param({"nthread": self.n_jobs})
            self.boosters.append(b)

    def set_threads(self, n_jobs: int) -> None:
        """Threads used by :meth:`predict`."""
        self.n_jobs = max(1, int(n_jobs))
        for b in self.boosters:
            b.set_param({"nthread": self.n_jobs})

    def config(self) -> dict[str, Any]:
        """Options that rebuild this backend (JSON)."""
        return dict(self.options)


class XGBRandomForestBackend(XGBoostBackend):
    """A random forest in XGBoost's random-forest mode (``xgboost.XGBRFRegressor``), one per target."""

    name = "random_forest"
    estimator = "XGBRFRegressor"
    DEFAULTS: ClassVar[dict[str, Any]] = {"n_estimators": 100, "max_depth": 20, "subsample": 0.632,
                                "colsample_bynode": 0.33, "learning_rate": 1.0, "reg_lambda": 1e-5,
                                "min_child_weight": 1.0, "tree_method": "hist", "max_bin": 32}
