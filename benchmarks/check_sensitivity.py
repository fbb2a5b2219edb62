"""Parameter screening on real CAMELS data: Sobol' indices on the LSE, checked against the ensemble.

On the 535 CAMELS basins with observed streamflow and the embedded HBV model (14 parameters):

1. ``lsegeo sensitivity`` (:func:`lsegeo.workflows.sensitivity.sensitivity_job`) on the saved LSE of
   iteration 1 of the comparison's calibration (fitted on the 535 x 200 members of iteration 0):
   Sobol' S1 and ST of normalised KGE' on the calibration period for every basin, the product,
   the figures, the RBD-FAST check on 20 basins drawn reproducibly from the iteration-0
   ensemble, and the parameters carrying 85 % of the summed S1 per flood-generation cluster;
2. baselines that say what the agreement of the check means: on the same 20 basins, a second
   given-data estimator (binned correlation ratio) against RBD-FAST (how far two estimators
   from the same 200 members agree with each other); and the emulator's S1 against RBD-FAST
   and against the binned estimator over every basin (is the 20-basin check representative).

Usage (after `make demo` and ``benchmarks/compare_calibration.py``, which make the stores)::

    nice -n 10 .venv/bin/python benchmarks/check_sensitivity.py [--check 20] [--n-base 512]
        [--out work/sensitivity] [--emulator DIR]

The emulator is ``work/comparison/calibration_lse_study.zarr.emulators/iteration_1`` (or, when
absent, ``work/comparison/calibration_lse.zarr.emulators/iteration_1``).
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np

from lsegeo import sensitivity as sens
from lsegeo.config import validate_config
from lsegeo.io.stores import root_attrs
from lsegeo.workflows.sensitivity import sensitivity_job

CANDIDATES = ("work/comparison/calibration_lse_study.zarr", "work/comparison/calibration_lse.zarr")


def _calibration_store(emulator: str | None) -> tuple[Path, int]:
    """The calibration store whose saved emulator is analysed, and its iteration."""
    if emulator:
        d = Path(emulator)
        store = d.parent.with_name(d.parent.name.removesuffix(".emulators"))
        return store, int(d.name.removeprefix("iteration_"))
    for s in CANDIDATES:
        if (Path(s + ".emulators") / "iteration_1" / "COMPLETE").exists():
            return Path(s), 1
    raise SystemExit(f"no saved LSE of iteration 1 in {' or '.join(c + '.emulators' for c in CANDIDATES)}: run "
                     "benchmarks/compare_calibration.py first")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--emulator", help="a saved LSE directory <calibration store>.emulators/iteration_<k>")
    ap.add_argument("--ensemble", default="work/comparison/iteration0.zarr", help="the iteration-0 ensemble")
    ap.add_argument("--basins-store", default="work/camels_basins.zarr")
    ap.add_argument("--check", type=int, default=20, help="basins checked with RBD-FAST")
    ap.add_argument("--n-base", type=int, default=512, help="base sample of the Saltelli design")
    ap.add_argument("--share", type=float, default=0.85)
    ap.add_argument("--out", default="work/sensitivity", help="directory of the product and the figures")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    store, k = _calibration_store(args.emulator)
    made_with = json.loads(root_attrs(store)["lsegeo_calibration_config"])
    # the calibration's own settings (seed, targets, attributes, backend), pointed at the stores on disk
    calibrate = {key: made_with[key] for key in ("emulator", "backend", "objectives", "period", "attributes", "seed")}
    cfg = validate_config({"ensemble": {"basins_store": args.basins_store, "store": args.ensemble},
                           "calibrate": {**calibrate, "ensemble_store": args.ensemble, "store": str(store)}})
    out = Path(args.out)
    print(f"calibration store {store}, emulator of iteration {k}; iteration-0 ensemble {args.ensemble}")
    t0 = time.perf_counter()
    job = sensitivity_job(cfg, iteration=k, out=out / f"sensitivity_{store.stem}_iteration{k}.zarr",
                          overwrite=True, n_base=args.n_base, figures=out / "figures", check=args.check,
                          share=args.share, call="benchmarks/check_sensitivity.py")
    print(f"sensitivity job: {time.perf_counter() - t0:.1f} s in all")

    ds, cmp = job.indices, job.agreement
    target, period, seed = ds.attrs["lsegeo_target"], ds.attrs["lsegeo_period"], ds.attrs["lsegeo_seed"]
    picked = [str(b) for b in cmp["basin"].values]
    print(f"\nbaseline 1: two given-data estimators on the same {len(picked)} basins and members "
          "(binned correlation ratio vs RBD-FAST)")
    binned = sens.sensitivity_from_ensemble(args.ensemble, picked, objective=target, period=period, method="binned")
    between = sens.compare_indices(binned, cmp["S1_ensemble"], top=int(cmp.attrs["top"]))
    print(sens.format_agreement(between, per_basin=False)[0])

    for n, (method, label) in enumerate((("rbd_fast", "RBD-FAST (no bootstrap)"),
                                          ("binned", "the binned estimator")), start=2):
        t0 = time.perf_counter()
        est = sens.sensitivity_from_ensemble(args.ensemble, objective=target, period=period, method=method,
                                             num_resamples=0, seed=seed)
        every = sens.compare_indices(ds, est, top=int(cmp.attrs["top"]))
        print(f"baseline {n}: the emulator's S1 against {label} over every basin ({time.perf_counter() - t0:.1f} s)")
        print(sens.format_agreement(every, per_basin=False)[0])
        rho = every["spearman"].values
        print(f"  Spearman quartiles over {np.isfinite(rho).sum()} basins: "
              + ", ".join(f"{q:.2f}" for q in np.nanpercentile(rho, [25, 50, 75])))


if __name__ == "__main__":
    main()
