"""Benchmark: direct calibration (DDS on the HBV model itself) of CAMELS basins with observed streamflow.

Each basin is calibrated with ``--budget`` model runs (default 2,000: the default parameter set
and 1,999 DDS candidates in ``--chains`` lock-step chains) over the simulation window of the
default periods (1988-10-01 to 2008-09-30, 7,305 days), maximising KGE' on the calibration
period (water years 2000-2008); the best parameters are then scored on the test period (water
years 1990-1999). Runs on a local cluster of ``--workers`` worker processes (1 thread each).

Prints the wall time (cluster start-up apart), model runs per second, the median KGE' of the
default and best parameter sets on both periods, the median best-so-far calibration KGE' at
equal budgets, and the wall time extrapolated to every basin with observations.

``--basins N`` takes N basins spread evenly over the store's list of basins with observations
(every k-th, so that all regions are represented); the default is all of them (535).

Needs the basins store of `make demo` (work/camels_basins.zarr).

Usage::

    .venv/bin/python benchmarks/bench_direct.py --basins 20          # time a subset first
    .venv/bin/python benchmarks/bench_direct.py                      # all 535 basins
    .venv/bin/python benchmarks/bench_direct.py --chains 1 --basins 20
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from _measure import PeakMemory

from lsegeo.calibration.direct import calibrate_direct
from lsegeo.io.stores import open_store

BUDGETS = (200, 250, 300, 350, 400, 450, 500, 1000, 2000)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--basins", type=int, default=0, help="number of basins (0: all with observations)")
    ap.add_argument("--budget", type=int, default=2000)
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--chunk-basins", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--basins-store", default="work/camels_basins.zarr")
    ap.add_argument("--store", default="", help="also write the result here (default: a temporary store)")
    args = ap.parse_args()

    from distributed import Client, LocalCluster

    obs = open_store(args.basins_store, "observed")
    observed = [str(b) for b, h in zip(obs.basin.values, obs["has_observations"].values, strict=True) if h]
    if args.basins and args.basins < len(observed):
        idx = np.unique(np.linspace(0, len(observed) - 1, args.basins).round().astype(int))
        basins = [observed[i] for i in idx]
    else:
        basins = observed
    with tempfile.TemporaryDirectory(dir="work") as tmp, PeakMemory() as mem:
        t0 = time.perf_counter()
        with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                          dashboard_address=":0") as cluster, Client(cluster) as client:
            t_start = time.perf_counter() - t0
            t1 = time.perf_counter()
            ds = calibrate_direct(args.basins_store, basins, budget=args.budget, chains=args.chains,
                                  client=client, store=args.store or f"{tmp}/direct.zarr",
                                  overwrite=bool(args.store), chunk_basins=args.chunk_basins, seed=args.seed,
                                  progress=False, call="benchmarks/bench_direct.py")
            wall = time.perf_counter() - t1
    ok = ds.runs.values > 0
    n_ok = int(ok.sum())
    runs = int(ds.runs.sum())
    days = len(np.arange(np.datetime64("1988-10-01"), np.datetime64("2008-10-01")))

    def med(da) -> float:
        return float(np.nanmedian(da.values))

    print(f"direct calibration (DDS, r=0.2): {n_ok} basins x {args.budget} runs, {args.chains} chain(s), "
          f"{args.workers} workers, {days} days per run")
    print(f"  cluster start-up                                  {t_start:8.1f} s")
    print(f"  wall time (calibrate_direct, store written)       {wall:8.1f} s")
    print(f"  model runs per second                             {runs / wall:10.0f}"
          f"   ({runs * days / wall:.3g} basin-run-days/s)")
    print(f"  worker seconds per basin (median)                 {med(ds.wall_seconds):8.2f} s")
    print(f"  peak memory (process tree)                        {mem.peak / 2**20:8.0f} MiB")
    if n_ok < len(observed):
        per_basin = wall / n_ok
        print(f"  extrapolated to all {len(observed)} observed basins     "
              f"{per_basin * len(observed):8.0f} s  ({per_basin * len(observed) / 60:.1f} min)")
    for p in ("calibration", "test"):
        print(f"  KGE' {p:11s} median: default {med(ds.default_score.sel(period=p)):.3f}, "
              f"DDS best {med(ds.best_score.sel(period=p)):.3f}")
    hist = ds.history
    line = ", ".join(f"{b}: {med(hist.sel(run=b)):.3f}" for b in BUDGETS if b <= args.budget)
    print(f"  median best-so-far calibration KGE' by runs       {line}")
    skipped = [f"{b} ({n})" for b, n in zip(ds.basin.values, ds.note.values, strict=True) if n]
    if skipped:
        print(f"  skipped: {'; '.join(skipped)}")


if __name__ == "__main__":
    main()
