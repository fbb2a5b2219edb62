"""Benchmark: the whole LSE calibration loop over every CAMELS basin, timed from iteration 0 on.

The study's full scheme on all 535 basins with observed streamflow: iteration 0 (200 members of
the embedded HBV model per basin, run and scored), then ``--iterations`` (8) iterations of 50
proposals per basin with the large-sample emulator, on a LocalCluster of ``--workers`` (2)
single-threaded workers. Everything runs in this one process tree, whose wall time and peak
memory (summed RSS of the process and its workers, :class:`_measure.PeakMemory`) are reported.

Per iteration it prints where the time went (the emulator fit, the proposals, the runs, as the
loop logs them), the emulator's prospective skill on its own proposals, and the median best KGE'
over basins on the calibration period (WY 2000-2008, where the best member is chosen) and the
independent test period (WY 1990-1999), with percentile-bootstrap 95% intervals.

Side by side, in the same run and from the same iteration 0, it times ``--baseline-iterations``
(1) iterations of the loop as it was before the 2026-11-30 changes (the per-iteration 5-fold
grouped cross-validation, XGBoost's 600 trees of depth 8, 10 of the 50 proposals from a GA of 100
generations): the ratio of the two per-iteration
wall times is the figure to read on a shared machine. ``--reference STORE`` adds the median best
KGE' of another calibration store at equal runs per basin (e.g. the LSE of
``benchmarks/compare_calibration.py``).

With ``--dds`` it also runs, on the same basins, the direct searches the loop is measured against
(DDS on the model itself, Tolson & Shoemaker 2007): one chain of 2,000 runs per basin (the
reference optimum), and the batch-parallel search of equal rounds: 50 lock-step chains per basin
from the default set, each advancing one step per round of 50 runs, read at the loop's rounds
(iteration 0's 200 runs are 4 rounds, every iteration one more). The table then gives, per
budget, the medians of the loop and both searches with bootstrap intervals
(:func:`lsegeo.calibration.comparison.comparison_table`).

Needs the basins store of ``make demo`` (work/camels_basins.zarr).

Usage::

    .venv/bin/python benchmarks/bench_loop.py [--iterations 8] [--workers 2] [--basins N]
        [--baseline-iterations 1] [--reference work/comparison/calibration_lse.zarr]
        [--set key=value ...] [--dds] [--out work/bench_loop]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import yaml  # noqa: E402
from _measure import PeakMemory  # noqa: E402

from lsegeo.calibration.comparison import bootstrap_median  # noqa: E402
from lsegeo.calibration.store import calibration_history  # noqa: E402
from lsegeo.config import validate_config  # noqa: E402
from lsegeo.workflows.calibrate import calibrate_job  # noqa: E402
from lsegeo.workflows.ensemble import ensemble_basins, ensemble_job  # noqa: E402

#: the loop's settings before 2026-11-30 (cross-validation in every iteration, 600 trees of depth 8,
#: 10 of the 50 proposals from the GA)
BEFORE = {"cv_folds": 5, "local_share": 0.8,
          "backend_options": {"n_estimators": 600, "max_depth": 8, "learning_rate": 0.05, "max_bin": 256}}

_PATTERNS = {"fit": re.compile(r"iteration (\d+): LSE fitted on \d+ rows in ([\d.]+) s"),
             "proposals": re.compile(r"iteration (\d+): \d+ proposals for \d+ basins .* in ([\d.]+) s"),
             "runs": re.compile(r"iteration (\d+): \d+ runs \(\d+ failed\) in ([\d.]+) s"),
             "prospective": re.compile(r"iteration (\d+): prospective skill")}


class _Log(logging.Handler):
    """The loop's INFO messages, kept to read the per-step times back."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())

    def steps(self) -> dict[int, dict[str, float]]:
        out: dict[int, dict[str, float]] = {}
        for line in self.lines:
            for step, pat in _PATTERNS.items():
                m = pat.search(line)
                if m and step != "prospective":
                    out.setdefault(int(m.group(1)), {})[step] = float(m.group(2))
        return out


def _value(text: str):
    return yaml.safe_load(text)


def _medians(store: Path) -> dict[int, tuple]:
    hist = calibration_history(store)
    out = {}
    for k in hist.iteration.values:
        best = hist["best_score"].sel(iteration=k)
        out[int(k)] = (int(hist["runs"].sel(iteration=k)), bootstrap_median(best.sel(period="calibration").values),
                       bootstrap_median(best.sel(period="test").values))
    return out


def _skill(store: Path) -> dict[int, dict]:
    from lsegeo.io.stores import open_store

    raw = json.loads(open_store(store, "calibration").attrs.get("lsegeo_emulator_skill", "{}"))
    return {int(k): v for k, v in raw.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iterations", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--basins", type=int, default=0, help="the first N basins with streamflow (0: all 535)")
    ap.add_argument("--baseline-iterations", type=int, default=1, help="iterations of the loop as before (0: none)")
    ap.add_argument("--reference", default=None, help="a calibration store to compare at equal runs")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                    help="calibrate settings of the timed loop (YAML values), e.g. generations=30")
    ap.add_argument("--dds", action="store_true", help="also DDS: 1 chain x 2,000 runs and 50 lock-step chains")
    ap.add_argument("--out", default="work/bench_loop")
    args = ap.parse_args()
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    basins_store = Path("work/camels_basins.zarr")
    basins = ensemble_basins(basins_store, "observed")
    if args.basins:
        basins = basins[: args.basins]
    extra = {k: _value(v) for k, v in (s.split("=", 1) for s in args.set)}
    log = _Log()
    logging.getLogger("lsegeo").addHandler(log)
    logging.getLogger("lsegeo").setLevel(logging.INFO)
    print(f"{len(basins)} basins, {args.workers} workers; load average before: {os.getloadavg()}", flush=True)

    from distributed import Client, LocalCluster

    base = {"cluster": {"n_workers": args.workers},
            "ensemble": {"basins_store": str(basins_store), "store": str(out / "iteration0.zarr"), "basins": basins}}
    t0 = time.perf_counter()  # cluster start-up included
    with PeakMemory() as mem:
        with LocalCluster(n_workers=args.workers, threads_per_worker=1, dashboard_address=":0") as cluster, \
                Client(cluster) as client:
            ensemble_job(validate_config(base), client=client, progress=False)
            t_iter0 = time.perf_counter() - t0
            cfg = validate_config({**base, "calibrate": {"iterations": args.iterations, **extra,
                                                         "store": str(out / "calibration.zarr")}})
            calibrate_job(cfg, client=client, progress=False)
            wall = time.perf_counter() - t0
    steps = log.steps()
    timed = json.loads(_root_attr(out / "calibration.zarr"))
    print(f"\ntimed loop: iteration 0 {t_iter0:.1f} s (cluster start-up included); iterations 1-{args.iterations} "
          f"{sum(timed.values()):.1f} s; wall time in all {wall:.1f} s ({wall / 60:.2f} min); peak memory of the "
          f"process tree {mem.peak / 2**30:.2f} GiB; load average after: {os.getloadavg()}")
    meds = _medians(out / "calibration.zarr")
    skill = _skill(out / "calibration.zarr")
    ref = _medians(Path(args.reference)) if args.reference else {}
    ref_by_runs = {v[0]: v for v in ref.values()}
    print("\n| iteration | runs per basin | wall [s] | fit [s] | proposals [s] | runs [s] | prospective median r / "
          "bias | median best KGE' calibration [95% CI] | test [95% CI] |" + (" reference at equal runs: calibration "
                                                                              "/ test |" if ref else ""))
    print("|---" * (9 + bool(ref)) + "|")
    for k, (runs, cal, test) in meds.items():
        s = steps.get(k, {})
        p = (skill.get(k, {}).get("prospective_targets") or {}).get("nkgeprime", {})
        r = ref_by_runs.get(runs)
        print(f"| {k} | {runs} | {timed.get(str(k), t_iter0 if k == 0 else np.nan):.1f} | {s.get('fit', np.nan):.1f} | "
              f"{s.get('proposals', np.nan):.1f} | {s.get('runs', np.nan):.1f} | "
              f"{p.get('median_corr', np.nan):.3f} / {p.get('median_bias', np.nan):+.3f} | "
              f"{cal[0]:.3f} [{cal[1]:.3f}, {cal[2]:.3f}] | {test[0]:.3f} [{test[1]:.3f}, {test[2]:.3f}] |"
              + (f" {r[1][0]:.3f} / {r[2][0]:.3f} |" if r else (" |" if ref else "")))
    if args.baseline_iterations:
        log.lines.clear()
        with LocalCluster(n_workers=args.workers, threads_per_worker=1, dashboard_address=":0") as cluster, \
                Client(cluster) as client:
            before = dict(BEFORE)
            bcfg = validate_config({**base, "calibrate": {"iterations": args.baseline_iterations, **before,
                                                          "store": str(out / "calibration_before.zarr")}})
            calibrate_job(bcfg, client=client, progress=False)
        btimed = json.loads(_root_attr(out / "calibration_before.zarr"))
        bsteps = log.steps()
        print(f"\nthe loop as before ({json.dumps(before)}), same iteration 0, same run:")
        for k in sorted(int(x) for x in btimed):
            s, now = bsteps.get(k, {}), timed.get(str(k), np.nan)
            print(f"  iteration {k}: {btimed[str(k)]:.1f} s (fit {s.get('fit', np.nan):.1f} s, proposals "
                  f"{s.get('proposals', np.nan):.1f} s, runs {s.get('runs', np.nan):.1f} s); now {now:.1f} s: "
                  f"{btimed[str(k)] / now:.2f}x faster")
    if args.dds:
        _direct(args, out, basins_store, basins)
    print(f"load average at the end: {os.getloadavg()}")


def _direct(args, out: Path, basins_store: Path, basins: list[str]) -> None:
    """DDS with one chain of 2,000 runs and with 50 lock-step chains over the loop's rounds; the table."""
    from distributed import Client, LocalCluster

    from lsegeo.calibration.comparison import comparison_table, format_comparison
    from lsegeo.calibration.direct import calibrate_direct

    rounds = [200 + 50 * k for k in range(args.iterations + 1)]
    searches = {"DDS, 1 chain": (1, 2000, [*rounds, 1000]),
                "DDS, 50 chains in lock-step (one step per round of 50)": (50, rounds[-1] + 1, [r + 1 for r in rounds])}
    stores = {}
    with LocalCluster(n_workers=args.workers, threads_per_worker=1, dashboard_address=":0") as cluster, \
            Client(cluster) as client:
        for label, (chains, budget, checkpoints) in searches.items():
            stores[label] = out / f"direct_{chains}.zarr"
            t0 = time.perf_counter()
            calibrate_direct(basins_store, basins, budget=budget, chains=chains, client=client, store=stores[label],
                             progress=False, checkpoints=[c for c in checkpoints if c < budget])
            print(f"{label}: {budget} runs per basin in {time.perf_counter() - t0:.1f} s", flush=True)
    import pandas as pd

    labels = list(stores)
    table = pd.concat([
        comparison_table({"LSE loop": out / "calibration.zarr"}, {labels[0]: stores[labels[0]]},
                         direct_runs=[*rounds, 1000, 2000]),
        comparison_table({}, {labels[1]: stores[labels[1]]}, direct_runs=[r + 1 for r in rounds])],
        ignore_index=True)
    table.to_csv(out / "comparison.csv", index=False)
    print("\n" + format_comparison(table))


def _root_attr(store: Path) -> str:
    from lsegeo.io.stores import root_attrs

    return root_attrs(store).get("lsegeo_iteration_seconds", "{}")


if __name__ == "__main__":
    main()
