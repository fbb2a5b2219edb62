"""Benchmark: throughput of the embedded HBV model, numba kernel against the numpy reference.

Runs :func:`lsegeo.models.hbv.simulate.simulate_batch` (numba kernel, one core, time outer and members
inner) on real CAMELS forcing, by default 20 basins x 200 members x 3650 days after a warm-up
call that compiles (or loads from the numba cache) the kernel, and
:func:`lsegeo.models.hbv.reference.simulate_basin_numpy` (pure numpy, Python loop over time, numpy over
members) on a smaller workload with the same number of members. Both figures are in
basin-member-days per second; the ratio is the speed-up of the kernel. The members are a seeded
Latin hypercube over ``HBV_SPACE`` (member 0 the default set).

Forcing is read from ``$LSEGEO_WORK_DIR/camels_basins.zarr`` (default ``work/``, written by
``make demo``); when that store is absent a seeded synthetic series stands in, and the output
says so.

Usage::

    .venv/bin/python benchmarks/bench_model.py [--basins 20] [--members 200] [--days 3650]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np

from lsegeo.design import latin_hypercube
from lsegeo.models.hbv.adapter import HBV_SPACE
from lsegeo.models.hbv.reference import simulate_basin_numpy
from lsegeo.models.hbv.simulate import simulate_batch

VARS = ("prcp", "tmax", "tmin", "pet")


def load_forcing(n_basins: int, n_days: int) -> tuple[dict[str, np.ndarray], str]:
    """(basins, days) float64 arrays of the first basins of the store, or a synthetic stand-in."""
    store = Path(os.environ.get("LSEGEO_WORK_DIR", "work")) / "camels_basins.zarr"
    if store.exists():
        from lsegeo.io.stores import open_store

        ds = open_store(store, "forcing")[list(VARS)].isel(basin=slice(0, n_basins), time=slice(0, n_days)).load()
        return ({v: ds[v].values.astype(np.float64) for v in VARS},
                f"CAMELS Daymet from {store}, basins {ds.basin.values[0]}..{ds.basin.values[-1]}")
    rng = np.random.default_rng(0)
    day = np.arange(n_days)
    temp = 8 + 12 * np.sin(2 * np.pi * (day - 110) / 365.25) + rng.normal(0, 3, (n_basins, n_days))
    prcp = np.where(rng.random((n_basins, n_days)) < 0.4, rng.gamma(0.7, 9.0, (n_basins, n_days)), 0.0)
    pet = np.maximum(2 + 1.5 * np.sin(2 * np.pi * (day - 110) / 365.25) + rng.normal(0, .3, (n_basins, n_days)), 0)
    return {"prcp": prcp, "tmax": temp + 5, "tmin": temp - 5, "pet": pet}, f"SYNTHETIC ({store} not found)"


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo, or what :mod:`platform` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--basins", type=int, default=20)
    ap.add_argument("--members", type=int, default=200)
    ap.add_argument("--days", type=int, default=3650)
    ap.add_argument("--repeat", type=int, default=5, help="timed runs of each; the best is reported")
    ap.add_argument("--numpy-basins", type=int, default=2)
    ap.add_argument("--numpy-days", type=int, default=730)
    args = ap.parse_args()

    f, source = load_forcing(args.basins, args.days)
    params = np.stack([latin_hypercube(HBV_SPACE, args.members, seed=b) for b in range(args.basins)])
    work = args.basins * args.members * args.days

    t0 = time.perf_counter()
    simulate_batch(*(f[v][:1, :30] for v in VARS), params[:1])  # compile or load the cached kernel
    compile_s = time.perf_counter() - t0
    times = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        q = simulate_batch(*(f[v] for v in VARS), params)
        times.append(time.perf_counter() - t0)
    assert np.isfinite(q).all() and (q >= 0).all()
    numba_rate = work / min(times)

    nb, nd = min(args.numpy_basins, args.basins), min(args.numpy_days, args.days)
    numpy_times = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        for b in range(nb):
            qr = simulate_basin_numpy(*(f[v][b, :nd] for v in VARS), params[b])
        numpy_times.append(time.perf_counter() - t0)
        assert np.abs(qr - q[nb - 1, :, :nd]).max() < 1e-10
    numpy_s = min(numpy_times)
    numpy_rate = nb * args.members * nd / numpy_s

    print(f"HBV model throughput ({cpu_name()}, one core)")
    print(f"  forcing: {source}")
    print(f"numba kernel (simulate_batch): {args.basins} basins x {args.members} members x {args.days} days "
          f"= {work:.3g} basin-member-days")
    print(f"  compile/cache load     {compile_s:8.2f} s (warm-up call, not timed below)")
    print(f"  wall time (best of {args.repeat}) {min(times):8.3f} s   (all: {', '.join(f'{t:.3f}' for t in times)})")
    print(f"  throughput             {numba_rate:10.3e} basin-member-days/s")
    print(f"numpy reference (simulate_basin_numpy): {nb} basins x {args.members} members x {nd} days")
    print(f"  wall time (best of {args.repeat}) {numpy_s:8.3f} s")
    print(f"  throughput             {numpy_rate:10.3e} basin-member-days/s")
    print(f"numba / numpy            {numba_rate / numpy_rate:8.1f} x")


if __name__ == "__main__":
    main()
