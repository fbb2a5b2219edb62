"""Benchmark: optimising many basins on an emulator, batched against a per-basin loop.

Three ways to run the same optimisation (GA, the study's settings: population 100, 100
generations, 3 restarts per basin, 50 proposals per basin), measured in the same process:

* ``propose(engine="numpy")``: all runs of all basins advance together as array operations,
  one emulator call per generation;
* ``propose(engine="pymoo")``: one pymoo GA object per run through ask/tell, one emulator call
  per generation;
* ``propose_loop``: one ``pymoo.optimize.minimize`` per basin and restart, each calling the
  emulator for its basin alone (the straightforward baseline).

The loop and the pymoo engine cost the same per run whatever the number of basins, so by default
they are timed on ``--loop-basins`` basins (the first ones) and scaled linearly to ``--basins``;
the output says so. ``--loop-basins`` equal to ``--basins`` times them in full.

The emulator is a saved lsegeo emulator when ``--emulator DIR`` is given (loaded with
``lsegeo.emulators.load``); otherwise a STAND-IN: an XGBoost regressor fitted here on a
synthetic problem of 14 parameters and 27 attribute-like basin features (500 basins x 200
members = 100,000 rows), whose predictions take the form ``predict(basin_idx, u)`` of an lsegeo
emulator. The output says which one was used.

Usage::

    .venv/bin/python benchmarks/bench_optimise.py [--basins 100] [--loop-basins 10]
        [--pop 100] [--gens 100] [--restarts 3] [--proposals 50] [--emulator DIR]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np

from lsegeo.optimise.proposals import propose
from lsegeo.optimise.pymoo_engine import propose_loop

N_PARAMS, N_ATTRS = 14, 27


class StandInEmulator:
    """XGBoost on [14 parameters, 27 basin attributes] -> a KGE-like score, fitted on synthetic data."""

    def __init__(self, n_basins: int = 500, members: int = 200, seed: int = 0, threads: int | None = None) -> None:
        import xgboost as xgb

        rng = np.random.default_rng(seed)
        self.attrs = rng.random((n_basins, N_ATTRS))
        # each basin's optimum and parameter weights depend on its attributes
        mix = rng.normal(0.0, 1.5, (N_ATTRS, N_PARAMS)) / np.sqrt(N_ATTRS)
        self.optimum = 1.0 / (1.0 + np.exp(-(self.attrs - 0.5) @ mix * 3.0))
        self.weight = 0.2 + 2.0 * rng.random((n_basins, N_PARAMS)) * (rng.random((n_basins, N_PARAMS)) < 0.5)
        basin = np.repeat(np.arange(n_basins), members)
        u = rng.random((len(basin), N_PARAMS))
        y = self.truth(basin, u) + rng.normal(0.0, 0.03, len(basin))
        self.basin, self.u, self.y, self.members = basin, u, y, members
        t0 = time.perf_counter()
        self.model = xgb.XGBRegressor(n_estimators=300, max_depth=8, learning_rate=0.1, tree_method="hist",
                                      n_jobs=threads or os.cpu_count(), random_state=seed)
        self.model.fit(self._features(basin, u), y)
        self.fit_seconds = time.perf_counter() - t0
        self.booster = self.model.get_booster()
        self.rows = len(basin)

    def truth(self, basin: np.ndarray, u: np.ndarray) -> np.ndarray:
        """The synthetic 'true' score (normKGE-like, at most 1)."""
        d = np.sqrt((self.weight[basin] * (u - self.optimum[basin]) ** 2).sum(1))
        kge = 1.0 - d
        return kge / (2.0 - kge)

    def _features(self, basin: np.ndarray, u: np.ndarray) -> np.ndarray:
        return np.hstack([u, self.attrs[basin]])

    def predict(self, basin_idx: np.ndarray, u: np.ndarray) -> np.ndarray:
        return self.booster.inplace_predict(self._features(np.asarray(basin_idx), np.asarray(u)))[:, None]


def lsegeo_emulator(stand_in: StandInEmulator):
    """A real ``lsegeo.emulators.LargeSampleEmulator`` (XGBoost backend) fitted on the stand-in's
    synthetic rows, shipped through ``to_bytes`` / ``load_bytes`` as the workers get it."""
    from lsegeo import emulators
    from lsegeo.design import Parameter, ParameterSpace
    from lsegeo.emulators.features import AttributeEncoder, TrainingSet

    for name in ("LargeSampleEmulator", "load_bytes"):
        if not hasattr(emulators, name):
            raise ImportError(f"lsegeo.emulators has no {name} yet")
    n_basins = len(stand_in.attrs)
    names = [f"attr{i}" for i in range(N_ATTRS)]
    cols = {n: stand_in.attrs[:, i] for i, n in enumerate(names)}
    encoder = AttributeEncoder.fit(cols, names)
    ts = TrainingSet(basins=[f"b{i:04d}" for i in range(n_basins)], attribute_names=encoder.feature_names,
                     attributes=encoder.transform(cols), param_names=[f"p{i}" for i in range(N_PARAMS)],
                     basin_index=stand_in.basin, params_unit=stand_in.u, target=stand_in.y[:, None],
                     target_names=["nkgeprime"], member=np.tile(np.arange(stand_in.members), n_basins),
                     encoder=encoder, space=ParameterSpace(tuple(Parameter(f"p{i}", 0.0, 1.0, 0.5)
                                                                 for i in range(N_PARAMS))),
                     target_senses=["max"])
    em = emulators.LargeSampleEmulator(backend="xgboost", seed=0)
    t0 = time.perf_counter()
    em.fit(ts)
    fit = time.perf_counter() - t0
    em = emulators.load_bytes(em.to_bytes())
    return em.predict, (f"lsegeo.emulators.LargeSampleEmulator (xgboost backend), fitted on {len(ts):,} "
                        f"synthetic rows ({N_PARAMS} parameters + {N_ATTRS} attributes) in {fit:.1f} s")


def load_emulator(path: str | None):
    """(predict, n_params, senses, description)."""
    if path:
        from lsegeo import emulators

        em = emulators.load(Path(path))
        return em.predict, len(em.param_names), ("max",), f"lsegeo emulator from {path}"
    stand_in = StandInEmulator()
    try:
        predict, what = lsegeo_emulator(stand_in)
        return predict, N_PARAMS, ("max",), what
    except Exception as err:  # noqa: BLE001 - the emulators package is in flux: say why it was not used
        note = f"no real lsegeo emulator: {type(err).__name__}: {err}"
    return stand_in.predict, N_PARAMS, ("max",), (
        f"STAND-IN ({note}): XGBoost, 300 trees of depth 8, on {N_PARAMS} parameters + {N_ATTRS} "
        f"attribute-like features, fitted on {stand_in.rows:,} synthetic rows in {stand_in.fit_seconds:.1f} s")


class Counting:
    def __init__(self, predict) -> None:
        self.predict, self.calls, self.rows, self.seconds = predict, 0, 0, 0.0

    def __call__(self, b, u):
        t0 = time.perf_counter()
        out = self.predict(b, u)
        self.seconds += time.perf_counter() - t0
        self.calls += 1
        self.rows += len(u)
        return out


def timed(fn, predict, basins, n_params, senses, a):
    c = Counting(predict)
    t0 = time.perf_counter()
    res = fn(c, basins, n_params, senses, a.proposals, algorithm="ga", pop_size=a.pop, n_gen=a.gens,
             n_restarts=a.restarts, seed=a.seed, min_distance=a.min_distance)
    return res, time.perf_counter() - t0, c


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--basins", type=int, default=100)
    p.add_argument("--loop-basins", type=int, default=10, help="basins timed for the loop and the pymoo engine")
    p.add_argument("--pop", type=int, default=100)
    p.add_argument("--gens", type=int, default=100)
    p.add_argument("--restarts", type=int, default=3)
    p.add_argument("--proposals", type=int, default=50)
    p.add_argument("--min-distance", type=float, default=0.01)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--emulator", default=None, help="directory of a saved lsegeo emulator")
    a = p.parse_args()

    predict, n_params, senses, what = load_emulator(a.emulator)
    basins = np.arange(a.basins)
    nl = min(a.loop_basins, a.basins)
    scale = a.basins / nl
    print(f"emulator: {what}")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"python {platform.python_version()}")
    print(f"GA: {a.basins} basins x {a.restarts} restarts, population {a.pop}, {a.gens} generations, "
          f"{a.proposals} proposals per basin, min_distance {a.min_distance}")
    predict(np.zeros(10, dtype=int), np.full((10, n_params), 0.5))   # warm-up

    # the GA alone (no neighbourhood search), as the per-basin loop does it
    res_np, t_np, c_np = timed(lambda *x, **k: propose(*x, local_share=0.0, **k), predict, basins, n_params,
                               senses, a)
    res_pm, t_pm, c_pm = timed(lambda *x, **k: propose(*x, engine="pymoo", local_share=0.0, **k), predict,
                               basins[:nl], n_params, senses, a)
    res_lp, t_lp, c_lp = timed(propose_loop, predict, basins[:nl], n_params, senses, a)
    same = np.array_equal(res_pm.u, res_lp.u)

    def row(name, t, c, n, scaled):
        tt = t * scaled
        note = f"(measured on {n} basins, x{scaled:g})" if scaled != 1 else "(measured)"
        print(f"  {name:<30} {tt:9.2f} s {note:<32} predict calls {int(c.calls * scaled):>7,}  "
              f"rows {int(c.rows * scaled):>11,}  in predict {c.seconds * scaled:8.2f} s")
        return tt

    print(f"\nwall time for {a.basins} basins:")
    tn = row("batched, engine='numpy'", t_np, c_np, a.basins, 1)
    tp = row("batched, engine='pymoo'", t_pm, c_pm, nl, scale)
    tl = row("loop, minimize per basin", t_lp, c_lp, nl, scale)
    if nl < a.basins:
        print(f"  (loop and pymoo engine timed on the first {nl} basins and scaled linearly to {a.basins})")
    print(f"\nspeed-up over the loop: engine='numpy' {tl / tn:.1f}x, engine='pymoo' {tl / tp:.2f}x")
    print(f"engine='pymoo' and the loop give identical proposals: {same}")

    def best(r):
        return np.nanmean(r.predicted[:, 0, 0])

    print(f"mean predicted score of the best proposal over the first {nl} basins: "
          f"numpy {np.nanmean(res_np.predicted[:nl, 0, 0]):.4f}, pymoo {best(res_pm):.4f}, loop {best(res_lp):.4f}")
    print(f"mean predicted score of all proposals: numpy {np.nanmean(res_np.predicted[:nl]):.4f}, "
          f"pymoo {np.nanmean(res_pm.predicted):.4f}")
    print(f"basins whose min_distance was relaxed: numpy {res_np.relaxed.mean():.0%} of {a.basins} "
          f"(median distance kept {np.median(res_np.min_distance):.2g}), pymoo {res_pm.relaxed.mean():.0%} of {nl}")


if __name__ == "__main__":
    main()
