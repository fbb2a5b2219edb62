"""Benchmark: the spatial cross-validation of the regionalization methods, with real runs.

Runs ``lsegeo crossval`` (:func:`lsegeo.workflows.crossval.crossval_job`) on a calibration store
and prints:

- the table of every method x fold scheme x period (median KGE' with a bootstrap 95% interval,
  quartiles, share better than default, gap closure);
- the coverage of the 90% score intervals on held-out folds, overall and per PUR region;
- the wall time, and each method's time summed over the folds, with its ratio to ``default``
  measured in the same run.

The folds and runs are checkpointed in ``--out``, so a run can be split (``--schemes study``, then
``--schemes pub``, ...), and a rerun only prints.

    .venv/bin/python benchmarks/regionalize_crossval.py --store work/calibration_lse.zarr \
        --schemes study pub pur flood_cluster --out work/crossval --workers 2
"""

from __future__ import annotations

import argparse
import json
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--store", default="work/calibration_lse.zarr", help="calibration store")
    ap.add_argument("--basins-store", default="work/camels_basins.zarr")
    ap.add_argument("--schemes", nargs="+", default=["study", "pub", "pur", "flood_cluster"])
    ap.add_argument("--methods", nargs="+", default=None, help="default: every method")
    ap.add_argument("--out", default="work/crossval")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--trees", type=int, default=None, help="XGBoost trees of the LSE (default the backend's)")
    ap.add_argument("--near", type=int, default=None, help="donor-ensemble: nearest donors (default 3)")
    ap.add_argument("--similar", type=int, default=None, help="donor-ensemble: most similar donors (default 3)")
    ap.add_argument("--combine", default=None, help="donor-similar: nearest, best_mean or mean_response")
    args = ap.parse_args()

    from lsegeo.config import validate_config
    from lsegeo.regionalize.crossval import format_table
    from lsegeo.runtime import configure_logging
    from lsegeo.workflows.crossval import crossval_job

    configure_logging()
    section = {"store": args.store, "basins_store": args.basins_store, "crossval_schemes": args.schemes,
               "crossval_methods": args.methods, "crossval_dir": args.out}
    if args.trees:
        section["backend_options"] = {"n_estimators": args.trees}
    donors = {k: v for k, v in (("near", args.near), ("similar", args.similar), ("combine", args.combine))
              if v is not None}
    if donors:
        section["donors"] = donors
    cfg = validate_config({"cluster": {"n_workers": args.workers}, "regionalize": section})
    t0 = time.perf_counter()
    cv, files = crossval_job(cfg, progress=False)
    wall = time.perf_counter() - t0
    print(format_table(cv.table))
    print(f"\nwall time {wall:.0f} s (checkpointed folds are not recomputed)")
    sec = cv.scores["seconds"]
    for scheme in sec["scheme"].values:
        s = sec.sel(scheme=scheme)
        base = float(s.sel({"method": "default"}))
        parts = [f"{m} {float(s.sel({'method': m})):.1f} s" + (f" ({float(s.sel({'method': m})) / base:.0f}x)"
                                                               if base > 0 else "")
                 for m in s["method"].values]
        print(f"{scheme}: method time summed over folds: " + ", ".join(parts))
    coverage = json.loads(files["coverage"].read_text())
    print("\ncoverage of the 90% score interval on held-out folds (calibration period):")
    for key, c in coverage.items():
        regions = ", ".join(f"{g} {100 * v['share_inside']:.0f}%" for g, v in c["groups"].items())
        print(f"{key}: {100 * c['overall']['share_inside']:.1f}% of {c['overall']['n']} "
              f"(mean width {c['overall']['mean_width']:.3f}); {regions}")
    for key, path in files.items():
        print(f"{key}: {path}")


if __name__ == "__main__":
    main()
