"""The comparison the study could not afford: LSE vs SSE vs direct calibration, on real CAMELS data.

For every CAMELS basin with observed streamflow and the embedded HBV model:

* ``lse``: the large-sample emulator loop with lsegeo's defaults, iteration 0 (200 runs per
  basin) + k x 50 runs, all from the emulator-screened neighbourhood search;
* ``lse_study`` / ``sse_study``: the large-sample / single-site emulator loop as the study ran
  it (every proposal from a GA of 100 generations; ``local_share: 0``, ``min_distance: 0.01``;
  a 5-fold cross-validation in every iteration), same budget; the LSE with XGBoost's own 600
  trees of depth 8 (these settings are pinned here, so the rows keep their meaning when
  lsegeo's defaults change);
* ``sse``: the single-site emulator loop with lsegeo's defaults (no per-iteration
  cross-validation: its skill is the same as in ``sse_study``, which measures it);
* ``dds``: DDS (Tolson & Shoemaker 2007) on the model itself with 2,000 runs per basin, the
  reference optimum.

Reports, for the calibration period (WY 2000-2008) and the independent test period
(WY 1990-1999), the median over basins of the best KGE' (the best member chosen on the
calibration period) after each iteration, with bootstrap 95% intervals over basins, the runs per
basin each needed, and the wall time; writes a Markdown table and a figure.

Usage (after `make demo`, which makes the basins store and iteration 0)::

    .venv/bin/python benchmarks/compare_calibration.py [--iterations 4] [--workers 2] [--dds-budget 2000]
        [--basins N] [--out work/comparison] [--skip sse ...] [--study-cv-folds 5]

``--study-cv-folds 0`` runs the study's schemes without their per-iteration cross-validation. That
cross-validation measures the emulator's skill only: the loop fits the iteration's emulator anew
after it, with the same seed, so the proposals and every score are the same without it, and the
SSE's five extra fits per iteration (about 11 min each iteration on 2 cores) are saved. A store
resumes only with the value it was made with.

Each method's store is a checkpoint: rerunning the command resumes what is unfinished.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

from lsegeo.calibration.comparison import comparison_table, final_best_scores, format_comparison
from lsegeo.calibration.direct import open_direct
from lsegeo.config import validate_config
from lsegeo.io.stores import root_attrs
from lsegeo.plots.comparison import plot_comparison
from lsegeo.workflows.calibrate import calibrate_job

#: The emulator loops compared: their calibrate settings beyond emulator, iterations and store.
_STUDY = {"local_share": 0.0, "min_distance": 0.01, "generations": 100, "pop_size": 100, "restarts": 3,
          "cv_folds": 5}
METHODS: dict[str, dict] = {
    "lse": {"emulator": "lse"},
    "lse_study": {"emulator": "lse", **_STUDY,
                  "backend_options": {"n_estimators": 600, "max_depth": 8, "learning_rate": 0.05, "max_bin": 256}},
    # the SSE's cross-validation (5 x 535 Gaussian-process fits, about 11 min an iteration on 2 cores)
    # is measured in sse_study; lsegeo's SSE run skips it (the default)
    "sse": {"emulator": "sse"},
    "sse_study": {"emulator": "sse", **_STUDY},
}
LABELS = {"lse": "LSE (lsegeo)", "lse_study": "LSE (study's scheme)", "sse": "SSE (lsegeo)",
          "sse_study": "SSE (study's scheme)"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iterations", type=int, default=4)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--dds-budget", type=int, default=2000)
    ap.add_argument("--dds-chains", type=int, default=1)
    ap.add_argument("--basins", type=int, default=0, help="use only the first N basins (0: all with streamflow)")
    ap.add_argument("--out", default="work/comparison")
    ap.add_argument("--study-cv-folds", type=int, default=_STUDY["cv_folds"],
                    help="folds of the study schemes' per-iteration cross-validation (0: none; skill only)")
    ap.add_argument("--skip", nargs="*", default=[], choices=[*METHODS, "dds"],
                    help="methods not to run now (an existing store of an earlier run is still reported)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from distributed import Client, LocalCluster

    from lsegeo.workflows.ensemble import ensemble_basins, ensemble_job

    basins_store = Path("work/camels_basins.zarr")
    basins = ensemble_basins(basins_store, "observed")
    if args.basins:
        basins = basins[: args.basins]
    base = {"cluster": {"n_workers": args.workers},
            "ensemble": {"basins_store": str(basins_store), "store": str(out / "iteration0.zarr"),
                         "basins": basins}}
    timings = json.loads((out / "timings.json").read_text()) if (out / "timings.json").exists() else {}
    timings = {"dds": timings["dds"]} if "dds" in timings else {}  # the loops keep their own times
    with LocalCluster(n_workers=args.workers, threads_per_worker=1, dashboard_address=":0") as cluster, \
            Client(cluster) as client:
        ensemble_job(validate_config(base), client=client, progress=False)  # iteration 0: made, resumed or kept
        for method, settings in METHODS.items():
            if method in args.skip:  # not run now; an earlier run's store is still reported
                continue
            if "cv_folds" in settings:  # the study's schemes
                settings = {**settings, "cv_folds": args.study_cv_folds}
            cfg = validate_config({**base, "calibrate": {**settings, "iterations": args.iterations,
                                                         "store": str(out / f"calibration_{method}.zarr")}})
            print(f"[{method}] calibrating", flush=True)
            calibrate_job(cfg, client=client, progress=False)
        dds_store = out / "direct_dds.zarr"
        if "dds" not in args.skip and not dds_store.exists():
            from lsegeo.calibration.direct import calibrate_direct

            t0 = time.perf_counter()
            budgets = [200 + 50 * k for k in range(args.iterations + 1)] + [1000]
            calibrate_direct(basins_store, basins, budget=args.dds_budget, chains=args.dds_chains,
                             client=client, store=dds_store, progress=False,
                             checkpoints=[b for b in budgets if b <= args.dds_budget])
            timings["dds"] = time.perf_counter() - t0
    (out / "timings.json").write_text(json.dumps(timings, indent=1))
    calibrations = {}
    for method in METHODS:
        store = out / f"calibration_{method}.zarr"
        if store.exists():
            calibrations[LABELS[method]] = store
            # the loops' own record: seconds of each iteration after 0, resumes included
            seconds = json.loads(root_attrs(store).get("lsegeo_iteration_seconds", "{}"))
            timings[method] = sum(seconds.values())
    direct = {}
    if dds_store.exists():
        chains = int(open_direct(dds_store).attrs.get("lsegeo_chains", 1))
        direct[f"DDS direct ({chains} chain{'s' if chains > 1 else ''})"] = dds_store
    table = comparison_table(calibrations, direct)
    table.to_csv(out / "comparison.csv", index=False)
    wall = ", ".join(f"{LABELS.get(m, 'DDS direct')} {t / 60:.1f} min" for m, t in timings.items())
    text = (f"{format_comparison(table)}\n\nWall time on {args.workers} workers (emulator loops: iterations "
            f"1-{args.iterations}, iteration 0 not included): {wall}.\n")
    (out / "comparison.md").write_text(text)
    print(text)
    print("figure:", plot_comparison(final_best_scores(calibrations, direct), out / "comparison_cdf.png",
                                     title="Emulator loops vs direct calibration (DDS)"))


if __name__ == "__main__":
    main()
