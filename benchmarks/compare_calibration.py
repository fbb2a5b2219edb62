"""The comparison the study could not afford: LSE vs SSE vs direct calibration, on real CAMELS data.

For every CAMELS basin with observed streamflow and the embedded HBV model:

* ``lse``: the large-sample emulator loop with lsegeo's defaults, iteration 0 (200 runs per
  basin) + k x 50 runs, 40 of the 50 from the emulator-screened neighbourhood search;
* ``lse_study`` / ``sse_study``: the large-sample / single-site emulator loop as the study ran
  it (every proposal from the GA; ``local_share: 0``, ``min_distance: 0.01``), same budget;
* ``sse``: the single-site emulator loop with lsegeo's defaults;
* ``dds``: DDS (Tolson & Shoemaker 2007) on the model itself with 2,000 runs per basin, the
  reference optimum.

Reports, for the calibration period (WY 1999-2008) and the independent test period
(WY 1990-1999), the median over basins of the best KGE' (the best member chosen on the
calibration period) after each iteration, with bootstrap 95% intervals over basins, the runs per
basin each needed, and the wall time; writes a Markdown table and a figure.

Usage (after `make demo`, which makes the basins store and iteration 0)::

    .venv/bin/python benchmarks/compare_calibration.py [--iterations 4] [--workers 2] [--dds-budget 2000]
        [--basins N] [--out work/comparison] [--skip sse ...]

Each method's store is a checkpoint: rerunning the command resumes what is unfinished.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import zarr

from lsegeo.calibrate import calibrate, calibration_history
from lsegeo.config import validate_config
from lsegeo.io.stores import open_store


def bootstrap_median(x: np.ndarray, n: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """Median of the finite values and its percentile-bootstrap 95% interval."""
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    rng = np.random.default_rng(seed)
    meds = np.median(rng.choice(x, size=(n, x.size), replace=True), axis=1)
    return float(np.median(x)), float(np.percentile(meds, 2.5)), float(np.percentile(meds, 97.5))


def fmt(t: tuple[float, float, float]) -> str:
    return f"{t[0]:.3f} [{t[1]:.3f}, {t[2]:.3f}]"


#: The emulator loops compared: their calibrate settings beyond emulator, iterations and store.
METHODS: dict[str, dict] = {
    "lse": {"emulator": "lse"},
    "lse_study": {"emulator": "lse", "local_share": 0.0, "min_distance": 0.01},
    "sse": {"emulator": "sse"},
    "sse_study": {"emulator": "sse", "local_share": 0.0, "min_distance": 0.01},
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
    ap.add_argument("--skip", nargs="*", default=[], choices=[*METHODS, "dds"],
                    help="methods not to run now (an existing store of an earlier run is still reported)")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from distributed import Client, LocalCluster

    from lsegeo.workflows import ensemble_basins

    basins_store = Path("work/camels_basins.zarr")
    basins = ensemble_basins(basins_store, "observed")
    if args.basins:
        basins = basins[: args.basins]
    base = {"cluster": {"n_workers": args.workers},
            "ensemble": {"basins_store": str(basins_store), "store": str(out / "iteration0.zarr"),
                         "basins": basins}}
    timings = json.loads((out / "timings.json").read_text()) if (out / "timings.json").exists() else {}
    timings = {"dds": timings["dds"]} if "dds" in timings else {}  # the loops keep their own times
    results: dict[str, dict] = {}
    with LocalCluster(n_workers=args.workers, threads_per_worker=1, dashboard_address=":0") as cluster, \
            Client(cluster) as client:
        for method, settings in METHODS.items():
            if method in args.skip:  # not run now; an earlier run's store still counts
                if (out / f"calibration_{method}.zarr").exists():
                    results[method] = {"history": calibration_history(out / f"calibration_{method}.zarr")}
                continue
            cfg = validate_config({**base, "calibrate": {**settings, "iterations": args.iterations,
                                                         "store": str(out / f"calibration_{method}.zarr")}})
            store = calibrate(cfg, client=client, progress=False, log=lambda s, m=method: print(f"[{m}] {s}", flush=True))
            results[method] = {"history": calibration_history(store)}
        if "dds" not in args.skip:
            from lsegeo.direct import calibrate_direct

            store = out / "direct_dds.zarr"
            t0 = time.perf_counter()
            if not store.exists():
                calibrate_direct(basins_store, basins, budget=args.dds_budget, chains=args.dds_chains,
                                 client=client, store=store, progress=False)
                timings["dds"] = time.perf_counter() - t0
            results["dds"] = {"direct": open_store(store, "direct").load()}
    (out / "timings.json").write_text(json.dumps(timings, indent=1))
    for method in results:  # the loops' own record: seconds of each iteration after 0, resumes included
        if method in METHODS:
            attrs = zarr.open_group(str(out / f"calibration_{method}.zarr"), mode="r").attrs
            timings[method] = sum(json.loads(attrs.get("lsegeo_iteration_seconds", "{}")).values())
    rows = ["| method | runs per basin | median best KGE' calibration [95% CI] | median best KGE' test [95% CI] |",
            "|---|---|---|---|"]
    curves = {}
    for method in METHODS:
        if method not in results:
            continue
        h = results[method]["history"]
        for k in h.iteration.values:
            cal = h["best_score"].sel(iteration=k, period="calibration").values
            test = h["best_score"].sel(iteration=k, period="test").values
            rows.append(f"| {LABELS[method]} iteration {int(k)} | {int(h.runs.sel(iteration=k))} | "
                        f"{fmt(bootstrap_median(cal))} | {fmt(bootstrap_median(test))} |")
        last = h.iteration.values[-1]
        curves[f"{LABELS[method]}, {int(h.runs.sel(iteration=last))} runs, calibration"] = \
            h["best_score"].sel(iteration=last, period="calibration").values
        curves[f"{LABELS[method]}, {int(h.runs.sel(iteration=last))} runs, test"] = \
            h["best_score"].sel(iteration=last, period="test").values
    if "dds" in results:
        d = results["dds"]["direct"]
        hist = d["history"]
        for budget in sorted({200 + 50 * k for k in range(args.iterations + 1)} | {1000, args.dds_budget}):
            if budget <= hist.sizes["run"]:
                cal = hist.isel(run=budget - 1).values
                test = "(best at full budget only)" if budget != args.dds_budget else fmt(
                    bootstrap_median(d["best_score"].sel(period="test").values))
                rows.append(f"| DDS direct | {budget} | {fmt(bootstrap_median(cal))} | {test} |")
        curves[f"DDS, {args.dds_budget} runs, calibration"] = d["best_score"].sel(period="calibration").values
        curves[f"DDS, {args.dds_budget} runs, test"] = d["best_score"].sel(period="test").values
    table = "\n".join(rows)
    wall = ", ".join(f"{LABELS.get(m, m.upper())} {t / 60:.1f} min" for m, t in timings.items())
    text = (f"{table}\n\nWall time on {args.workers} workers (emulator loops: iterations 1-{args.iterations}, "
            f"iteration 0 not included): {wall}.\n")
    (out / "comparison.md").write_text(text)
    print(text)
    from lsegeo.summary import plot_score_cdf

    print("figure:", plot_score_cdf(curves, out / "comparison_cdf.png", xlabel="best simulated KGE'",
                                    title="LSE vs SSE vs direct calibration (DDS)", xlim=(-0.5, 1.0)))


if __name__ == "__main__":
    main()
