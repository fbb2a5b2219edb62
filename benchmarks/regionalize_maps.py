"""Benchmark: every parameter map of the CONUS 0.125-degree grid, per regionalization method.

For each method the whole product of a grid domain is made on a local dask cluster: the CAMELS
attributes rasterized onto the NLDAS grid (224 x 464, about 57,000 land cells), the method's
sets for every land cell, the predicted score, the applicability, and the zarr + netCDF maps with
their metadata. The emulators are fitted once, before the timing (as ``lsegeo regionalize``
fits them once for all domains). Prints wall time and the peak memory of the process tree
(scheduler and workers included) per method, with the ratio to the ``default`` method measured
in the same run (the same pipeline with no search: the baseline).

    .venv/bin/python benchmarks/regionalize_maps.py --store work/calibration_lse.zarr \
        --methods default lse-optimise lse-amortised --workers 2

The configuration is the demo's (``lsegeo.workflows.demo.DEMO_REGIONALIZATION``) unless
``--full`` asks for the defaults of the ``regionalize`` section.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _measure import PeakMemory  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--store", default="work/calibration_lse.zarr", help="calibration store")
    ap.add_argument("--basins-store", default="work/camels_basins.zarr")
    ap.add_argument("--methods", nargs="+", default=["default", "lse-optimise", "lse-amortised"])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--resolution", type=float, default=0.125)
    ap.add_argument("--full", action="store_true", help="the regionalize section's defaults, not the demo's")
    args = ap.parse_args()

    import numpy as np
    from distributed import Client, LocalCluster

    from lsegeo.config import validate_config
    from lsegeo.config.regionalize import DomainConfig
    from lsegeo.regionalize.methods import Context, regionalize
    from lsegeo.regionalize.training import fit_emulators, load_training
    from lsegeo.runtime import configure_logging
    from lsegeo.workflows.demo import DEMO_REGIONALIZATION
    from lsegeo.workflows.regionalize import build_domain

    configure_logging()
    section = {} if args.full else {k: v for k, v in DEMO_REGIONALIZATION.items() if k != "domains"}
    cfg = validate_config({"regionalize": {**section, "store": args.store, "basins_store": args.basins_store,
                                           "interval_scheme": None}})
    settings = cfg.regionalize.settings()
    training = load_training(args.store, args.basins_store, objective=settings.objective, period=settings.period)
    t0 = time.perf_counter()
    emulators = fit_emulators(training.ts, settings)
    print(f"emulator fit: {time.perf_counter() - t0:.1f} s on {len(training.ts)} rows of {len(training)} basins")
    dc = DomainConfig(name="conus", kind="grid", resolution=args.resolution)
    out = Path(tempfile.mkdtemp(prefix="lsegeo_maps_"))
    rows = []
    with LocalCluster(n_workers=args.workers, threads_per_worker=1) as cluster, Client(cluster) as client:
        ctx = Context(training, settings, emulators, client=client)
        if "lse-amortised" in args.methods:  # the network is fitted once, like the emulators
            t0 = time.perf_counter()
            from lsegeo.regionalize.methods import _differentiable_emulators

            _differentiable_emulators(ctx)
            print(f"torch_mlp emulators for lse-amortised: {time.perf_counter() - t0:.1f} s")
        for method in args.methods:
            with PeakMemory() as mem:
                domain = build_domain(dc, Path(args.basins_store), training.basins)
                t1 = time.perf_counter()
                result = regionalize(ctx, domain, method)
                t_method = time.perf_counter() - t1
                _write(result, domain, ctx, out / method)
            n = len(domain)
            rows.append((method, mem.wall, mem.peak / 2**30, t_method, n, float(np.nanmedian(result.predicted[:, 0]))))
            print(f"{method}: {mem.wall:.1f} s ({t_method:.2f} s in the method, {1e6 * t_method / n:.1f} us per "
                  f"cell), peak memory {mem.peak / 2**30:.2f} GiB, {n} land cells")
    base = {r[0]: r for r in rows}.get("default")
    print("\n| method | wall time | of which the method | per cell | peak memory | vs default (time) | "
          "median predicted nKGE' |")
    print("|---|---|---|---|---|---|---|")
    for m, wall, peak, tm, n, med in rows:
        ratio = f"{wall / base[1]:.1f}x" if base else "-"
        print(f"| {m} | {wall:.1f} s | {tm:.1f} s | {1e6 * tm / n:.1f} us | {peak:.2f} GiB | {ratio} | {med:.3f} |")
    shutil.rmtree(out, ignore_errors=True)


def _write(result, domain, ctx, folder: Path) -> None:
    """The products of one method, as the workflow writes them (no catalog)."""
    import numpy as np

    from lsegeo.products import write_parameter_maps
    from lsegeo.provenance import product_attrs
    from lsegeo.regionalize.applicability import Applicability
    from lsegeo.regionalize.assemble import product_dataset
    from lsegeo.regionalize.crossval import to_report_scale

    s = ctx.settings
    rows = ctx.rows(domain)
    app = Applicability.fit(ctx.encode(ctx.training.attributes))
    pred = to_report_scale(result.predicted[:, 0], s.objective, s.report_objective)
    nan = np.full(len(domain), np.nan)
    ds = product_dataset(result, domain, predicted=pred, lower=nan, upper=nan, applicability=app.distance(rows),
                         extrapolates=app.flag(rows),
                         attrs={"lsegeo_method": result.method, "lsegeo_objective": s.report_objective,
                                "lsegeo_period": s.period, "lsegeo_domain_kind": "grid",
                                "lsegeo_domain_name": domain.name, "lsegeo_model": "hbv"})
    attrs = product_attrs(title=f"benchmark {result.method}", summary="benchmark", step="regionalize",
                          call="benchmarks/regionalize_maps.py")
    write_parameter_maps(ds, folder, "conus", space=ctx.training.space, attrs=attrs, inputs={})


if __name__ == "__main__":
    main()
