"""Benchmark: the full CAMELS-US ingest (670 basins x 12,784 days) on a local cluster.

Prints the wall time, the peak memory of the whole process tree (client, scheduler, workers),
the throughput in basins per second, and, as a baseline measured in the same run, the time to
parse the same forcing files one after another in a single process without writing.

Usage::

    .venv/bin/python benchmarks/bench_ingest.py [--workers 2] [--baseline-files 100]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _measure import PeakMemory  # noqa: E402

from lsegeo.ingest.camels import ingest_camels  # noqa: E402
from lsegeo.io.camels import CamelsLayout, read_forcing  # noqa: E402
from lsegeo.parallel import ClusterSettings  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--baseline-files", type=int, default=100, help="files parsed serially for the baseline")
    args = ap.parse_args()
    layout = CamelsLayout.find()
    with tempfile.TemporaryDirectory() as tmp:
        with PeakMemory() as m:
            ingest_camels(store=Path(tmp) / "camels.zarr", cluster=ClusterSettings(n_workers=args.workers),
                          progress=False)
        n = len(layout.forcing_gauges)
        size = sum(f.stat().st_size for f in (Path(tmp) / "camels.zarr").rglob("*") if f.is_file())
    t0 = time.perf_counter()
    for g in layout.forcing_gauges[: args.baseline_files]:
        read_forcing(layout.forcing_path(g))
    serial = (time.perf_counter() - t0) / args.baseline_files * n
    print(f"full ingest: {n} basins, {args.workers} workers (cluster start-up included)")
    print(f"  wall time            {m.wall:8.1f} s")
    print(f"  peak memory (tree)   {m.peak / 2**20:8.0f} MiB")
    print(f"  throughput           {n / m.wall:8.1f} basins/s")
    print(f"  store size           {size / 2**20:8.0f} MiB")
    print(f"baseline: serial parse+check of all files, single process, no writing (extrapolated from "
          f"{args.baseline_files} files): {serial:.1f} s")
    print(f"  ingest wall / serial parse: {m.wall / serial:.2f}")


if __name__ == "__main__":
    main()
