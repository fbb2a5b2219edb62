"""How the proposals of one iteration are chosen, judged by running them: GA vs neighbourhood search.

Takes the iteration-0 ensemble and the LSE fitted on it (iteration 1 of a calibration run by
``benchmarks/compare_calibration.py``), draws a random sample of basins, makes 50 proposals per
basin in several ways, runs every proposal through the HBV model and reports per way: the share of
basins where a proposal beat the best member of iteration 0, and the median best KGE' on the
calibration period after the iteration. The ways:

* the GA's optimum of the emulator (``propose``, ``local_share=0``) with ``min_distance`` 0.01 (the
  study's scheme), 0.1 and 0.25;
* 50 DDS-style perturbations of each basin's 10 best members, not screened (the control: what
  the neighbourhood gives without the emulator);
* the emulator-screened neighbourhood search (``local_share=1``) and lsegeo's default mix
  (``local_share=0.8``: 10 from the GA, 40 from the neighbourhood).

Usage (after ``compare_calibration.py``)::

    .venv/bin/python benchmarks/compare_proposals.py [--basins 60] [--seed 1]
        [--ensemble work/comparison/iteration0.zarr]
        [--emulator work/comparison/calibration_lse_study.zarr.emulators/iteration_1]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from lsegeo.design import reflect_unit
from lsegeo.emulators import load
from lsegeo.emulators.features import space_from_store
from lsegeo.ensembles.store import open_ensemble
from lsegeo.io.basin_inputs import load_basin_inputs
from lsegeo.metrics.kernels import score_all
from lsegeo.models.hbv.adapter import HBVModel
from lsegeo.optimise.proposals import propose
from lsegeo.periods import DEFAULT_PERIODS, DEFAULT_WARMUP_DAYS, period_slices, simulation_window


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--basins", type=int, default=60)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--ensemble", default="work/comparison/iteration0.zarr")
    ap.add_argument("--emulator", default="work/comparison/calibration_lse_study.zarr.emulators/iteration_1")
    ap.add_argument("--basins-store", default="work/camels_basins.zarr")
    args = ap.parse_args()

    ens = open_ensemble(args.ensemble)
    em = load(args.emulator, n_jobs=2)
    space = space_from_store(ens)
    rng = np.random.default_rng(args.seed)
    basins = sorted(rng.choice([str(b) for b in ens.basin.values], args.basins, replace=False))
    sub = ens.sel(basin=basins).load()
    done = sub["status"].values == 1
    u0 = space.to_unit(sub["params"].values)
    kge = np.where(done, sub["scores"].sel(period="calibration", objective="kgeprime").values, np.nan)
    target = np.where(done, sub["scores"].sel(period="calibration", objective="nkgeprime").values, np.nan)
    best0 = np.nanmax(kge, axis=1)
    bidx = em.basin_index(basins)
    window = simulation_window(DEFAULT_PERIODS, DEFAULT_WARMUP_DAYS)
    forcing, observed = load_basin_inputs(args.basins_store, basins, HBVModel.forcing_variables, window)
    cal = period_slices(window, DEFAULT_PERIODS)["calibration"]
    model = HBVModel()

    def simulated(u: np.ndarray) -> np.ndarray:
        """KGE' on the calibration period of proposals ``u`` (basins, n, D)."""
        out = np.empty(u.shape[:2])
        x = space.from_unit(np.clip(u, 0.0, 1.0))
        for b, basin in enumerate(basins):
            q = model.run({v: forcing[v].sel(basin=basin).values for v in HBVModel.forcing_variables}, x[b])
            out[b] = score_all(q[:, cal], observed["qobs"].sel(basin=basin).values[cal], None,
                               ["kgeprime"])["kgeprime"]
        return out

    def unscreened(n: int, anchors: int = 10, radius: float = 0.2) -> np.ndarray:
        g = np.random.default_rng(args.seed + 1)
        order = np.argsort(-np.nan_to_num(target, nan=-np.inf), axis=1)[:, :anchors]
        a = u0[np.arange(len(basins))[:, None], order][:, g.integers(0, anchors, n)]
        sel = g.random(a.shape) < min(1.0, 4.0 / a.shape[-1])
        none = ~sel.any(-1)
        sel[none, g.integers(0, a.shape[-1], int(none.sum()))] = True
        return reflect_unit(a + np.where(sel, radius * g.standard_normal(a.shape), 0.0))

    existing = [u0[b][done[b]] for b in range(len(basins))]
    scores = [target[b][done[b]] for b in range(len(basins))]
    study = " (the study's scheme)"
    ways = {f"GA only, min_distance {md}{study if md == 0.01 else ''}": {"local_share": 0.0, "min_distance": md}
            for md in (0.01, 0.1, 0.25)}
    ways["neighbourhood of the 10 best members, not screened"] = None
    ways["neighbourhood search screened by the LSE (local_share 1)"] = {"local_share": 1.0, "min_distance": 0.1}
    ways["10 from the GA + 40 screened neighbourhood (local_share 0.8, default)"] = \
        {"local_share": 0.8, "min_distance": 0.1}
    print(f"{len(basins)} basins (seed {args.seed}); median best KGE' of iteration 0: {np.median(best0):.3f}")
    print(f"{'proposals':72s} improved  median best after  proposal time")
    for name, kw in ways.items():
        t0 = time.perf_counter()
        if kw is None:
            u = unscreened(50)
        else:
            u = propose(em.predict, bidx, len(space), ["max"], 50, seed=args.seed, existing=existing,
                        existing_scores=scores, **kw).u
        seconds = time.perf_counter() - t0
        new = np.nanmax(simulated(u), axis=1)
        after = np.fmax(new, best0)
        print(f"{name:72s} {np.mean(new > best0):7.0%}  {np.median(after):17.3f}  {seconds:12.1f} s", flush=True)


if __name__ == "__main__":
    main()
