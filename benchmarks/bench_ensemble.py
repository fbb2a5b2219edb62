"""Benchmark: iteration 0 of the calibration over every CAMELS basin with observed streamflow.

200 members (the default and a Latin hypercube of 199) of the embedded HBV model per basin, run
over the calibration and test periods plus one warm-up year (1988-10-01 to 2008-09-30, 7,305
days) on a local cluster, scored with 8 objectives on both periods, written to an ensemble store.
Prints wall time (cluster start-up included), peak memory of the whole process tree, throughput
in basin-member-days per second, and the median KGE' of the default and of the best member.

Needs the basins store of `make demo` (work/camels_basins.zarr).

Usage::

    .venv/bin/python benchmarks/bench_ensemble.py [--workers 2] [--members 200]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _measure import PeakMemory  # noqa: E402

from lsegeo.config import validate_config  # noqa: E402
from lsegeo.workflows.ensemble import default_and_best, ensemble_job  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--members", type=int, default=200)
    ap.add_argument("--basins-store", default="work/camels_basins.zarr")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(dir="work") as tmp:
        cfg = validate_config({"cluster": {"n_workers": args.workers},
                               "ensemble": {"basins_store": args.basins_store, "store": f"{tmp}/ens.zarr",
                                            "n_members": args.members}})
        with PeakMemory() as m:
            store, stats = ensemble_job(cfg, progress=False)
        summary = default_and_best(store)
    n = stats["done"] + stats["failed"]
    print(f"iteration 0: {n // args.members} basins x {args.members} members, {args.workers} workers")
    print(f"  wall time (start-up, store creation, runs, scores)  {m.wall:7.1f} s")
    print(f"  runner wall time                                   {stats['wall']:7.1f} s")
    print(f"  peak memory (process tree)                         {m.peak / 2**20:7.0f} MiB")
    print(f"  throughput (runner)                                {stats['throughput']:9.3g} basin-member-days/s")
    print(f"  failed runs                                        {stats['failed']}")
    for period, v in summary.items():
        print(f"  KGE' {period:11s} median over {v['n_basins']} basins: default {v['default']:.3f}, "
              f"best of {args.members} (chosen on calibration) {v['best']:.3f}")


if __name__ == "__main__":
    main()
