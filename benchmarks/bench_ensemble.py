"""Benchmark: iteration 0 of the calibration over every CAMELS basin with observed streamflow.

200 members (the default and a Latin hypercube of 199) of the embedded HBV model per basin, run
over the calibration and test periods plus one warm-up year (1988-10-01 to 2008-09-30, 7,305
days) on a local cluster, scored with 8 objectives on both periods, written to an ensemble store.
Prints wall time (cluster start-up included), peak memory of the whole process tree, throughput
in basin-member-days per second, and the median KGE' of the default and of the best member.

Side by side in the same run, it also compares the scoring of the runner
(:func:`lsegeo.ensembles.runner.score_members`: the fused numba kernel
:func:`lsegeo.metrics.fused.score_periods`) with the numpy reference it replaced (one
:func:`lsegeo.metrics.kernels.score_all` per period):

* per basin, on one basin's 200 members: the HBV kernel, the numpy scoring and the fused scoring,
  interleaved and repeated (medians), and the largest difference between the two scorings;
* the first call of the fused kernel in a fresh process, compiling (empty numba cache) and
  loading numba's cache, and the cache hits and misses of every dask worker after the run;
* end to end (``--compare-numpy``): the same ensemble again, its workers scoring with the numpy
  reference, and the ratio of the two throughputs (``--rounds`` pairs of runs, alternating which
  goes first; medians), and whether both stores hold the same scores;
* end to end (``--compare-reads``): the same, against workers that read each task's forcing and
  observations with xarray, opening the basins store anew for every task (the runner before the
  per-process cache of :mod:`lsegeo.io.basin_inputs`).

The load average (1, 5, 15 min) is printed before and after: the figures depend on what else the
machine runs.

Needs the basins store of `make demo` (work/camels_basins.zarr).

Usage::

    .venv/bin/python benchmarks/bench_ensemble.py [--workers 2] [--members 200]
        [--compare-numpy | --compare-reads] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import numpy as np  # noqa: E402
from _measure import PeakMemory  # noqa: E402

from lsegeo.config import validate_config  # noqa: E402
from lsegeo.workflows.ensemble import default_and_best, ensemble_job  # noqa: E402

OBJECTIVES = ["kgeprime", "nkgeprime", "kge", "nse", "lognse", "mae", "rmse", "monthly_mean_maxabs"]

_FIRST_CALL = """
import json, time, numpy as np
t0 = time.perf_counter()
from lsegeo.metrics.fused import fused_kernel_stats, score_periods
t1 = time.perf_counter()
score_periods(np.ones((2, 40)) + np.arange(40), np.arange(40.0), np.ones(40, int), [slice(0, 40)])
t2 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "first_call": t2 - t1, **fused_kernel_stats()}))
"""


def score_members_numpy(q, obs, month, slices, objectives, min_coverage=0.8):
    """The runner's scoring before the fused kernel: one numpy ``score_all`` per covered period."""
    from lsegeo.metrics.kernels import score_all
    from lsegeo.periods import covered, period_coverage

    ok = covered(period_coverage(obs, slices), min_coverage)
    out = np.full((q.shape[0], len(slices), len(objectives)), np.nan)
    for k, sl in enumerate(slices.values()):
        if ok[k]:
            res = score_all(q[:, sl], obs[sl], month[sl], list(objectives))
            out[:, k, :] = np.stack([res[o] for o in objectives], axis=-1)
    return out


def load_basin_inputs_xarray(store, basins, variables, window, observed=("qobs",)):
    """The runner's reads before the per-process cache: xarray opens both groups for every task."""
    import dask

    from lsegeo.io.stores import open_store

    tsel = slice(window[0], window[-1])
    with dask.config.set(scheduler="synchronous"):
        forcing = open_store(store, "forcing")[list(variables)].sel(basin=basins, time=tsel).load()
        obs = open_store(store, "observed")[list(observed)].sel(basin=basins, time=tsel).load()
    return forcing, obs


def _use_baseline(variant: str) -> None:
    """On a worker: make the runner score with the numpy reference, or read with xarray (benchmark only)."""
    import lsegeo.ensembles.runner as runner

    if variant == "numpy":
        runner.score_members = score_members_numpy
    elif variant == "xarray":
        runner.load_basin_inputs = load_basin_inputs_xarray


def _load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def first_call() -> dict[str, dict[str, float]]:
    """First call of the fused kernel in fresh processes: compiling (empty cache), then from the cache."""
    out = {}
    with tempfile.TemporaryDirectory() as cache:
        for what, env in (("compile", {"NUMBA_CACHE_DIR": cache}), ("cached", {})):
            done = subprocess.run([sys.executable, "-c", _FIRST_CALL], capture_output=True, text=True, check=True,
                                  env={**os.environ, **env})
            out[what] = json.loads(done.stdout.strip().splitlines()[-1])
    return out


def per_basin(basins_store: str, members: int, repeats: int = 5) -> dict[str, float]:
    """Median seconds of the HBV kernel and both scorings on the first observed basin, interleaved."""
    from lsegeo.design import latin_hypercube
    from lsegeo.ensembles.runner import score_members
    from lsegeo.io.basin_inputs import load_basin_inputs
    from lsegeo.io.stores import open_store
    from lsegeo.models.registry import get_model
    from lsegeo.periods import DEFAULT_PERIODS, period_coverage, period_slices, simulation_window

    window = simulation_window(DEFAULT_PERIODS, 365)
    slices = period_slices(window, DEFAULT_PERIODS)
    month = window.month.to_numpy()
    model = get_model("hbv")
    basins = [str(b) for b in open_store(basins_store, "observed").basin.values[:20]]
    forcing, observed = load_basin_inputs(basins_store, basins, model.forcing_variables, window)
    for basin in basins:  # the first basin scored on both periods
        obs = observed["qobs"].sel(basin=basin).values.astype("float64")
        if (period_coverage(obs, slices) >= 0.8).all():
            break
    inputs = {v: forcing[v].sel(basin=basin).values.astype("float64") for v in model.forcing_variables}
    params = latin_hypercube(model.space, members, 20250701)
    q = model.run(inputs, params)
    score_members(q, obs, month, slices, OBJECTIVES)  # compiled or loaded before timing
    times: dict[str, list[float]] = {"kernel": [], "numpy": [], "fused": []}
    for _ in range(repeats):
        for what, f in (("kernel", lambda: model.run(inputs, params)),
                        ("numpy", lambda: score_members_numpy(q, obs, month, slices, OBJECTIVES)),
                        ("fused", lambda: score_members(q, obs, month, slices, OBJECTIVES))):
            t0 = time.perf_counter()
            f()
            times[what].append(time.perf_counter() - t0)
    ref = score_members_numpy(q, obs, month, slices, OBJECTIVES)
    new = score_members(q, obs, month, slices, OBJECTIVES)
    same_nan = bool(np.array_equal(np.isnan(ref), np.isnan(new)))
    diff = float(np.nanmax(np.abs(new - ref) / np.maximum(np.abs(ref), 1e-12)))
    return {"basin": basin, **{k: float(np.median(v)) for k, v in times.items()}, "same_nan": same_nan,
            "max_rel_diff": diff}


def run(args, store: str, variant: str) -> tuple[dict, dict, float, float, list]:
    """One ensemble into a new store on its own local cluster.

    Returns the runner's stats, the KGE' summary, wall time, peak memory and the workers' numba
    cache stats.
    """
    from lsegeo.metrics.fused import fused_kernel_stats
    from lsegeo.parallel import dask_client

    cfg = validate_config({"cluster": {"n_workers": args.workers},
                           "ensemble": {"basins_store": args.basins_store, "store": store,
                                        "n_members": args.members}})
    with PeakMemory() as m, dask_client(cfg.cluster) as client:
        if variant != "now":
            client.run(_use_baseline, variant)
        _, stats = ensemble_job(cfg, client=client, progress=False)
        caches = list(client.run(fused_kernel_stats).values())
    return stats, default_and_best(Path(store)), m.wall, m.peak, caches


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--members", type=int, default=200)
    ap.add_argument("--basins-store", default="work/camels_basins.zarr")
    ap.add_argument("--compare-numpy", action="store_true",
                    help="run the ensemble a second time with the numpy scoring, for the end-to-end ratio")
    ap.add_argument("--compare-reads", action="store_true",
                    help="run the ensemble a second time with xarray's reads of the inputs in every task (the "
                         "runner before the per-process cache of lsegeo.io.basin_inputs), for the end-to-end ratio")
    ap.add_argument("--rounds", type=int, default=1,
                    help="with --compare-*: rounds of both runs, alternating which goes first")
    args = ap.parse_args()
    print(f"load average (1/5/15 min) at start: {_load()}, {os.cpu_count()} CPUs")
    fc = first_call()
    print(f"fused scoring, first call in a fresh process: compiling {fc['compile']['first_call']:.2f} s "
          f"({fc['compile']['cache_misses']} compilations), from numba's cache {fc['cached']['first_call']:.3f} s "
          f"({fc['cached']['cache_hits']} cache hits, {fc['cached']['cache_misses']} misses)")
    pb = per_basin(args.basins_store, args.members)
    print(f"per basin ({pb['basin']}, {args.members} members x 7,305 days, 2 periods, {len(OBJECTIVES)} objectives; "
          f"medians of 5, interleaved):")
    print(f"  HBV kernel                                         {pb['kernel'] * 1e3:7.1f} ms")
    print(f"  scoring, numpy reference                           {pb['numpy'] * 1e3:7.1f} ms")
    print(f"  scoring, fused numba                               {pb['fused'] * 1e3:7.1f} ms "
          f"(x{pb['numpy'] / pb['fused']:.1f} faster)")
    print(f"  fused vs numpy: same NaN {pb['same_nan']}, largest relative difference {pb['max_rel_diff']:.1e}")
    # rounds of (now, baseline), the order flipped every round so that neither always runs first
    baseline = "numpy" if args.compare_numpy else "xarray" if args.compare_reads else None
    order = [m for r in range(args.rounds) for m in (("now", baseline) if r % 2 == 0 else (baseline, "now"))]
    order = order if baseline else ["now"]
    label = {"now": "now: cached reads, fused scoring", "numpy": "numpy scoring",
             "xarray": "xarray reads in every task"}
    results, throughputs = {}, {v: [] for v in order}
    with tempfile.TemporaryDirectory(dir="work") as tmp:
        stores = {}
        for i, variant in enumerate(order):
            stores[variant] = f"{tmp}/ens_{i}_{variant}.zarr"
            results[variant] = run(args, stores[variant], variant)
            throughputs[variant].append(results[variant][0]["throughput"])
            print(f"  ({label[variant]}: {throughputs[variant][-1]:.3g} basin-member-days/s, load {_load()})",
                  flush=True)
        if baseline:
            from lsegeo.ensembles.store import GROUP
            from lsegeo.io.groups import StoreGroup

            new, ref = (StoreGroup(stores[k], GROUP).read("scores") for k in ("now", baseline))
            same_nan = bool(np.array_equal(np.isnan(new), np.isnan(ref)))
            close = bool(np.allclose(new, ref, rtol=1e-10, atol=1e-12, equal_nan=True))
    for variant, (stats, summary, wall, peak, caches) in results.items():
        n = stats["done"] + stats["failed"]
        print(f"iteration 0 ({label[variant]}): {n // args.members} basins x "
              f"{args.members} members, {args.workers} workers")
        print(f"  wall time (start-up, store creation, runs, scores)  {wall:7.1f} s")
        print(f"  runner wall time                                   {stats['wall']:7.1f} s")
        print(f"  peak memory (process tree)                         {peak / 2**20:7.0f} MiB")
        print(f"  throughput (runner)                                {stats['throughput']:9.3g} basin-member-days/s")
        print(f"  failed runs                                        {stats['failed']}")
        if variant != "numpy":
            print(f"  fused kernels on the workers: {[c['cache_hits'] for c in caches]} loaded from numba's cache, "
                  f"{[c['cache_misses'] for c in caches]} compiled")
        for period, v in summary.items():
            print(f"  KGE' {period:11s} median over {v['n_basins']} basins: default {v['default']:.3f}, "
                  f"best of {args.members} (chosen on calibration) {v['best']:.3f}")
    if baseline:
        now, ref = float(np.median(throughputs["now"])), float(np.median(throughputs[baseline]))
        print(f"end to end over {args.rounds} round(s), medians: now {now:.3g}, {label[baseline]} {ref:.3g} "
              f"basin-member-days/s, x{now / ref:.2f}; stored scores: same NaN {same_nan}, "
              f"equal within rtol 1e-10 / atol 1e-12 {close}")
    print(f"load average (1/5/15 min) at end: {_load()}")


if __name__ == "__main__":
    main()
