"""Benchmark: fitting the large-sample emulator on the full iteration-0 ensemble.

Measured in the same process, on the same features (14 unit-cube HBV parameters + the 27 study
attributes, ``dom_land_cover`` one-hot: 52 columns) and the same rows (every (basin, member) of
``work/ensemble_hbv.zarr`` with a finite nKGE' on the calibration period, 535 x 200 = 107,000):

* ``xgboost``: the lsegeo default, ``LargeSampleEmulator(backend="xgboost")`` (600 trees, depth
  8, learning rate 0.05, histogram method);
* ``sklearn_rf``: the study's straightforward way, ``sklearn.ensemble.RandomForestRegressor(
  n_estimators=100, max_depth=40, random_state=42, n_jobs=threads)``, plugged in here as an LSE
  backend through :func:`lsegeo.emulators.register_backend` (it cannot be saved without pickle,
  so it is a benchmark-only backend);
* optionally ``random_forest`` (``--models``): lsegeo's XGBoost random-forest backend.

With ``--sse`` it also fits the single-site emulators (one GP or forest per basin, chosen by
5-fold CV RMSE) of all basins on a dask ``LocalCluster`` of ``--threads`` single-threaded worker
processes, and reports the wall time, peak memory (workers included), the choices and the time
of the same optimiser-sized prediction.

For each: fit wall time and peak memory of the process (:class:`_measure.PeakMemory`, summed
RSS, and its rise over the RSS before the fit), the size of the fitted model (saved bytes for
the XGBoost models; node arrays for the sklearn forest), the time of one optimiser-sized
prediction (535 basins x 100 rows), and, unless ``--no-cv``, the grouped 5-fold CV skill
(``lsegeo.emulators.cross_validate``: no basin in both training and test folds) on
``--cv-basins`` basins (all by default): median over basins of the correlation between predicted
and simulated nKGE' over each basin's members, share of basins below 0.5, median RMSE.

XGBoost's OpenMP threads spin while they wait; on a machine whose cores are busy with other work
that makes a 2-thread fit many times slower than a 1-thread one. The script therefore sets
``OMP_WAIT_POLICY=PASSIVE`` before anything loads OpenMP, unless the variable is already set
(``--spin`` leaves it unset).

Usage::

    .venv/bin/python benchmarks/bench_emulator.py [--threads N] [--models xgboost,sklearn_rf]
        [--cv-basins 535] [--folds 5] [--no-cv] [--sse] [--spin]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

if "--spin" not in sys.argv:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _measure import PeakMemory

from lsegeo import emulators as E

ROOT = Path(__file__).resolve().parents[1]


class SklearnForestBackend:
    """The study's LSE: ``RandomForestRegressor(100, max_depth=40, random_state=42)`` (benchmark only)."""

    name = "sklearn_rf"

    def __init__(self, seed: int = 42, n_jobs: int = 1, **options) -> None:
        self.n_jobs = n_jobs
        self.options = {"n_estimators": 100, "max_depth": 40, "random_state": 42, **options}
        self.model = None

    def fit(self, X, Y):
        from sklearn.ensemble import RandomForestRegressor

        self.model = RandomForestRegressor(**self.options, n_jobs=self.n_jobs).fit(X, Y[:, 0] if Y.shape[1] == 1 else Y)
        return self

    def predict(self, X):
        return np.asarray(self.model.predict(X), dtype=np.float64).reshape(len(X), -1)

    def save(self, directory):
        raise NotImplementedError("a scikit-learn forest cannot be saved without pickle")

    def load(self, directory, n_targets):
        raise NotImplementedError("a scikit-learn forest cannot be saved without pickle")

    def set_threads(self, n_jobs):
        self.n_jobs = n_jobs
        self.model.n_jobs = n_jobs

    def config(self):
        return dict(self.options)

    def nbytes(self) -> int:
        """Bytes of the node arrays of every tree (nodes and values)."""
        return int(sum(e.tree_.__getstate__()["nodes"].nbytes + e.tree_.value.nbytes for e in self.model.estimators_))


E.register_backend("sklearn_rf", lambda **kw: SklearnForestBackend(**kw), replace=True)


def model_bytes(em) -> int:
    if em.backend == "sklearn_rf":
        return em.model.nbytes()
    with tempfile.TemporaryDirectory() as tmp:
        em.save(tmp)
        return sum(f.stat().st_size for f in Path(tmp).rglob("*") if f.is_file())


def sse_bench(ts, workers: int, seed: int, q_idx, q_u) -> None:
    """Fit the SSE of every basin on a LocalCluster and print time, memory, choices, predict time."""
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, \
            Client(cluster) as client:
        client.run(lambda: None)  # workers up before timing
        with PeakMemory() as pm:
            em = E.SingleSiteEmulator(seed=seed).fit(ts, client=client)
    t1 = time.perf_counter()
    em.predict(q_idx, q_u)
    t_pred = time.perf_counter() - t1
    sel = em.skill["selection_cv"]["nkgeprime"]
    print(f"fit SSE (gp+rf) {pm.wall:6.1f} s on {workers} worker processes ({pm.wall * workers / len(em.basins):.2f} "
          f"worker-s per basin)   peak RSS {pm.peak / 2**20:.0f} MiB (all processes)   chosen "
          f"{em.skill['chosen']['nkgeprime']}   median CV RMSE {em.skill['median_cv_rmse']['nkgeprime']}   "
          f"predict {len(q_idx)} rows {t_pred:.2f} s", flush=True)
    print(f"  out-of-fold skill of the chosen surrogates (within-basin 5-fold; the choice used the same folds): "
          f"median r {sel['median_corr']:.3f}, mean r {sel['mean_corr']:.3f}, "
          f"r<0.5 {100 * sel['share_corr_below_0.5']:.1f}%, "
          f"median RMSE {sel['median_rmse']:.4f}", flush=True)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ensemble", default=str(ROOT / "work" / "ensemble_hbv.zarr"))
    ap.add_argument("--basins-store", default=str(ROOT / "work" / "camels_basins.zarr"))
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--models", default="xgboost,sklearn_rf")
    ap.add_argument("--cv-basins", type=int, default=0, help="basins of the CV (0: all)")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--no-cv", action="store_true")
    ap.add_argument("--spin", action="store_true", help="leave OMP_WAIT_POLICY unset")
    ap.add_argument("--sse", action="store_true", help="also fit the single-site emulators of every basin on dask")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    import sklearn
    import xgboost

    print(f"machine       {platform.node()}, {os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB; "
          f"load average {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"libraries     xgboost {xgboost.__version__}, scikit-learn {sklearn.__version__}, numpy {np.__version__}; "
          f"threads {args.threads}; OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(unset)')}")
    t0 = time.perf_counter()
    ts = E.training_set(args.ensemble, args.basins_store, objectives=("nkgeprime",), period="calibration")
    print(f"training set  {len(ts)} rows, {len(ts.basins_with_rows)} basins, {len(ts.param_names)} parameters + "
          f"{len(ts.attribute_names)} attribute columns, read in {time.perf_counter() - t0:.1f} s")

    rng = np.random.default_rng(1)
    nb = len(ts.basins)
    q_idx = np.repeat(np.arange(nb), 100)
    q_u = rng.random((len(q_idx), len(ts.param_names)))
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    results = {}
    for name in models:
        em = E.LargeSampleEmulator(name, seed=args.seed if name != "sklearn_rf" else 42, n_jobs=args.threads)
        base_rss = psutil.Process().memory_info().rss
        with PeakMemory() as pm:
            em.fit(ts)
        t1 = time.perf_counter()
        em.predict(q_idx, q_u)
        t_pred = time.perf_counter() - t1
        size = model_bytes(em)
        results[name] = {"fit": pm.wall, "peak": pm.peak, "rise": pm.peak - base_rss, "size": size, "pred": t_pred}
        print(f"fit {name:<13} {pm.wall:7.1f} s   peak RSS {pm.peak / 2**20:7.0f} MiB "
              f"(+{(pm.peak - base_rss) / 2**20:.0f} "
              f"MiB over the {base_rss / 2**20:.0f} MiB before)   model {size / 2**20:7.1f} MiB   "
              f"predict {len(q_idx)} rows {t_pred:.2f} s", flush=True)
        del em

    if args.sse:
        sse_bench(ts, args.threads, args.seed, q_idx, q_u)
    if args.no_cv:
        return
    cv_ts = ts
    if args.cv_basins and args.cv_basins < len(ts.basins_with_rows):
        keep = [ts.basins[i] for i in ts.basins_with_rows[np.linspace(0, len(ts.basins_with_rows) - 1,
                                                                      args.cv_basins).astype(int)]]
        cv_ts = ts.select_basins(keep)
    print(f"\ngrouped {args.folds}-fold CV (by basin), nKGE' calibration period, {len(cv_ts)} rows of "
          f"{len(cv_ts.basins_with_rows)} basins{' (a subset, evenly spaced)' if cv_ts is not ts else ' (all)'}:")
    print(f"  {'model':<13}{'median r':>9}{'mean r':>8}{'r<0.5':>8}{'median RMSE':>13}{'overall r':>11}{'CV time':>9}")
    for name in models:
        def factory(name=name):
            return E.LargeSampleEmulator(name, seed=args.seed if name != "sklearn_rf" else 42, n_jobs=args.threads)

        skill = E.cross_validate(factory, cv_ts, n_folds=args.folds, seed=args.seed)
        m = skill["cv_targets"]["nkgeprime"]
        print(f"  {name:<13}{m['median_corr']:9.3f}{m['mean_corr']:8.3f}{100 * m['share_corr_below_0.5']:7.1f}%"
              f"{m['median_rmse']:13.4f}{m['overall_corr']:11.3f}{skill['cv_seconds']:8.0f}s", flush=True)


if __name__ == "__main__":
    main()
