"""Benchmark: the LSE on the real CTSM ensemble, and regionalization by selection on spatial folds.

The data: the CTSM perturbed-parameter ensemble of Tang, Wood & Swenson (2025) over CAMELS
basins (``<data dir>/ctsm_camels``: 201 parameter sets x 27 parameters, the same sets in every
basin, KGE' of daily unrouted runoff on water years 2005-2009 for 496 basins; 21 trials failed
everywhere and are left out). It is read from the ensemble store that ``lsegeo ingest
ctsm-camels`` writes (``--store``), or, with ``--from-csv``, straight from the CSV files into a
:class:`lsegeo.emulators.features.TrainingSet` (the parameters mapped to the unit cube linearly
between the bounds of ``sa_parameter_table.csv``). Attributes come from the CAMELS basins store.

The LSE learns nKGE' = KGE' / (2 - KGE') (lsegeo's ``nkgeprime``, an affine map of the study's
normKGE = 1 / (2 - KGE'), so the same correlations) from ``[27 unit-cube parameters, encoded
attributes]``; its predictions are turned back into KGE' with KGE' = 2 nKGE' / (1 + nKGE').

Measured (all with :mod:`lsegeo.regionalize`):

(a) emulator skill: the median over basins of the Pearson correlation between predicted and
    actual scores over each basin's members (nKGE' and KGE'), in sample (fitted on every row) and
    for unseen basins (each fold of a spatial scheme predicted by an LSE fitted on the others);
(b) regionalization by selection (``lse-select``): for each held-out basin, the member that the
    LSE fitted on the other folds ranks best among the sets run in the training basins, scored
    by its ACTUAL KGE' in that basin; median with a bootstrap 95% interval
    (:func:`lsegeo.calibration.comparison.bootstrap_median`), share of basins better than the
    default set (trial 0), against the default's median and each basin's best;
(c) backends (``xgboost``, ``random_forest``, ``torch_mlp``) and attribute sets (the study's
    27, :data:`~lsegeo.emulators.features.STUDY_ATTRIBUTES`, and every CAMELS catchment
    attribute: the topo, clim, soil, vege and geol files, not the streamflow signatures, which
    an ungauged basin does not have) on the ``study`` folds, on a subsample of the members
    (``--compare-members``, the same member ids in every basin) to fit the time budget.

XGBoost's OpenMP threads spin while they wait; the script sets ``OMP_WAIT_POLICY=PASSIVE``
(unless set already), as ``bench_emulator.py`` does.

Usage::

    .venv/bin/python benchmarks/ctsm_lse.py [--store work/ensemble_ctsm_camels.zarr | --from-csv]
        [--basins-store work/camels_basins.zarr] [--threads 2] [--trees 300]
        [--schemes study,pub,pur,flood_cluster] [--compare-members 60] [--no-compare] [--per-basin z]

With ``--per-basin z`` the main runs' LSE learns nKGE' standardised within each basin (the
ranking of a basin's members, not the basin's overall level); r(nKGE') and the selection are
measured as before, r(KGE') is not defined.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import logging  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
from importlib import resources  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_STORE = ROOT / "work" / "ensemble_ctsm_camels.zarr"
CATCHMENT_GROUPS = ("topo", "clim", "soil", "vege", "geol")


def all_camels_attributes() -> list[str]:
    """Every CAMELS catchment attribute of the topo, clim, soil, vege and geol files."""
    import yaml

    table = yaml.safe_load(resources.files("lsegeo.data").joinpath("camels_attributes.yml").read_text())
    return [name for group in CATCHMENT_GROUPS for name in table[group]]


def from_store(store: Path, basins_store: Path, attributes):
    """The training set from an ingested ensemble store (target nKGE', made from KGE' if needed)."""
    from lsegeo.emulators.features import training_set
    from lsegeo.ensembles.store import open_ensemble

    have = [str(o) for o in open_ensemble(store)["objective"].values]
    period = [str(p) for p in open_ensemble(store)["period"].values][0]
    if "nkgeprime" in have:
        return training_set(store, basins_store, objectives=("nkgeprime",), period=period, attributes=attributes)
    ts = training_set(store, basins_store, objectives=("kgeprime",), period=period, attributes=attributes)
    ts.target = ts.target / (2.0 - ts.target)
    ts.target_names, ts.target_senses = ["nkgeprime"], ["max"]
    return ts


def from_csv(data_dir: Path, basins_store: Path, attributes):
    """The training set straight from sa_parameter_sets.csv, sa_kge.csv and sa_parameter_table.csv."""
    import pandas as pd

    from lsegeo.design import Parameter, ParameterSpace
    from lsegeo.emulators.features import AttributeEncoder, TrainingSet
    from lsegeo.io.stores import open_store

    d = data_dir / "ctsm_camels"
    sets = pd.read_csv(d / "sa_parameter_sets.csv", index_col="trial")
    kge = pd.read_csv(d / "sa_kge.csv", index_col="trial", dtype={"trial": int})
    table = pd.read_csv(d / "sa_parameter_table.csv", index_col="parameter")
    if not sets.index.equals(kge.index):
        raise ValueError("the trials of sa_parameter_sets.csv and sa_kge.csv differ")
    space = ParameterSpace(tuple(Parameter(p, float(table.loc[p, "lower"]), float(table.loc[p, "upper"]),
                                           float(table.loc[p, "default"])) for p in sets.columns), name="ctsm")
    basins = [str(c) for c in kge.columns]
    k = kge.to_numpy(dtype=np.float64).T  # (basin, trial)
    b, m = np.nonzero(np.isfinite(k))
    attrs = open_store(basins_store, "attributes").sel(basin=basins).load()
    encoder = AttributeEncoder.fit(attrs, attributes)
    return TrainingSet(basins=basins, attribute_names=encoder.feature_names, attributes=encoder.transform(attrs),
                       param_names=space.names, basin_index=b.astype(np.int64),
                       params_unit=space.to_unit(sets.to_numpy(dtype=np.float64)[m]),
                       target=(k[b, m] / (2.0 - k[b, m]))[:, None], target_names=["nkgeprime"],
                       member=sets.index.to_numpy()[m].astype(np.int64), encoder=encoder, space=space,
                       period="calibration", target_senses=["max"])


def kge_of(n: np.ndarray) -> np.ndarray:
    """KGE' from nKGE' = KGE' / (2 - KGE')."""
    n = np.asarray(n, dtype=np.float64)
    return 2.0 * n / (1.0 + n)


def skill(ts, pred, actual: np.ndarray | None = None) -> tuple[float, float, float]:
    """Median within-basin r on nKGE' and on KGE', and the share of basins with r(nKGE') < 0.5.

    ``actual`` is the rows' nKGE' (default ``ts.target[:, 0]``). Predictions of a per-basin
    standardised target (``--per-basin z``) are in other units than nKGE', so r(KGE') is then
    NaN; r(nKGE') is unchanged by a per-basin affine map of the target.
    """
    from lsegeo.emulators.skill import skill_metrics

    actual = ts.target[:, :1] if actual is None else np.asarray(actual).reshape(-1, 1)
    n = skill_metrics(ts.basin_index, actual, pred[:, :1], ["n"])["n"]
    same_units = actual is ts.target[:, :1] or np.array_equal(actual, ts.target[:, :1], equal_nan=True)
    k = skill_metrics(ts.basin_index, kge_of(actual), kge_of(pred[:, :1]), ["k"])["k"]["median_corr"] \
        if same_units else float("nan")
    return n["median_corr"], k, n["share_corr_below_0.5"]


def standardise_per_basin(ts) -> np.ndarray:
    """Replace ``ts.target[:, 0]`` by its z-score within each basin; return the nKGE' it replaced.

    The LSE then learns how the members of a basin rank against each other, not how good the
    basin is overall (the between-basin part, which attributes predict worst). Selection and
    the within-basin r need only that ranking.
    """
    y = ts.target[:, 0].copy()
    n = np.bincount(ts.basin_index, minlength=len(ts.basins)).astype(np.float64)
    mean = np.bincount(ts.basin_index, y, len(ts.basins)) / np.maximum(n, 1)
    sd = np.sqrt(np.bincount(ts.basin_index, (y - mean[ts.basin_index]) ** 2, len(ts.basins)) / np.maximum(n, 1))
    ts.target[:, 0] = (y - mean[ts.basin_index]) / np.maximum(sd[ts.basin_index], 1e-9)
    return y


def per_basin(ts, member: int | None = None) -> np.ndarray:
    """Each basin's KGE' of one member (NaN where absent), or its best over all members."""
    k = kge_of(ts.target[:, 0])
    out = np.full(len(ts.basins), np.nan)
    if member is None:
        np.fmax.at(out, ts.basin_index, k)
    else:
        rows = ts.member == member
        out[ts.basin_index[rows]] = k[rows]
    return out


def factory(backend: str, threads: int, seed: int, options: dict):
    from lsegeo.emulators.lse import LargeSampleEmulator

    return lambda: LargeSampleEmulator(backend=backend, seed=seed, n_jobs=threads, **options)


def fmt_ci(x) -> str:
    from lsegeo.calibration.comparison import bootstrap_median

    med, lo, hi = bootstrap_median(x, seed=0)
    return f"{med:.3f} [{lo:.3f}, {hi:.3f}]"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--store", type=Path, default=DEFAULT_STORE, help="the ingested CTSM ensemble store")
    ap.add_argument("--from-csv", action="store_true", help="read the CSVs of ctsm_camels instead of a store")
    ap.add_argument("--data-dir", type=Path, default=None)
    ap.add_argument("--basins-store", type=Path, default=ROOT / "work" / "camels_basins.zarr")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--trees", type=int, default=300, help="xgboost trees of the main runs")
    ap.add_argument("--schemes", default="study,pub,pur,flood_cluster")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--compare-members", type=int, default=60, help="members per basin in the comparison (c)")
    ap.add_argument("--no-compare", action="store_true")
    ap.add_argument("--per-basin", choices=("none", "z"), default="none",
                    help="target of the main runs: nKGE' (none) or its z-score within each basin (z)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    from lsegeo.emulators.features import STUDY_ATTRIBUTES
    from lsegeo.io.stores import open_store
    from lsegeo.locations import resolve_data_dir
    from lsegeo.regionalize.folds import make_folds, read_flood_clusters
    from lsegeo.regionalize.selection import held_out_selection

    t_all = time.perf_counter()
    data_dir = resolve_data_dir(args.data_dir, expect="ctsm_camels")
    build = (lambda a: from_csv(data_dir, args.basins_store, a)) if args.from_csv else \
        (lambda a: from_store(args.store, args.basins_store, a))
    source = f"{data_dir / 'ctsm_camels'} (CSV)" if args.from_csv else str(args.store)
    ts = build(STUDY_ATTRIBUTES)
    basins = [ts.basins[b] for b in np.unique(ts.basin_index)]
    attrs = open_store(args.basins_store, "attributes").load()
    clusters = read_flood_clusters(data_dir=data_dir)
    xgb = {"n_estimators": args.trees}
    print(f"source {source}; {len(ts)} rows, {len(basins)} basins, {len(np.unique(ts.member))} members that ran, "
          f"{len(ts.param_names)} parameters + {len(ts.attribute_names)} attribute columns; "
          f"xgboost {args.trees} trees, {args.threads} threads; {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}", flush=True)

    default, best = per_basin(ts, member=0), per_basin(ts)
    print(f"default (trial 0) KGE' median {fmt_ci(default)}; each basin's best of the ensemble {fmt_ci(best)}")
    nkge = ts.target[:, 0].copy()
    if args.per_basin == "z":
        standardise_per_basin(ts)
        print("target of the main runs: nKGE' standardised within each basin (r(KGE') not defined)")
    kge_row = {(int(b), int(m)): kge_of(v) for b, m, v in zip(ts.basin_index, ts.member, nkge, strict=True)}

    t0 = time.perf_counter()
    em = factory("xgboost", args.threads, args.seed, xgb)().fit(ts)
    r_n, r_k, low = skill(ts, em.predict(ts.basin_index, ts.params_unit), nkge)
    print(f"(a) in sample: median r nKGE' {r_n:.3f}, KGE' {r_k:.3f}, r<0.5 {100 * low:.1f}% "
          f"({time.perf_counter() - t0:.0f} s)", flush=True)

    print("scheme         folds  r(nKGE')  r(KGE')  r<0.5   selection KGE' median [95% CI]  > default  "
          "no score  seconds")
    for scheme in args.schemes.split(","):
        folds = make_folds(scheme, basins, seed=args.seed, attributes=attrs, flood_clusters=clusters)
        ho = held_out_selection(factory("xgboost", args.threads, args.seed, xgb), ts, folds)
        r_n, r_k, low = skill(ts, ho.predicted, nkge)
        pos = {b: i for i, b in enumerate(ts.basins)}
        chosen = np.array([kge_row.get((pos[b], int(m)), np.nan) for b, m in zip(ho.basins, ho.member, strict=True)])
        base = default[[pos[b] for b in ho.basins]]
        better = np.mean(chosen[np.isfinite(base)] > base[np.isfinite(base)])
        print(f"{scheme:<14} {folds.n_folds:>5}  {r_n:8.3f}  {r_k:7.3f}  {100 * low:4.1f}%   {fmt_ci(chosen):>30}  "
              f"{100 * better:7.1f}%  {int(np.isnan(chosen).sum()):>8}  {ho.seconds:7.0f}", flush=True)

    ts.target[:, 0] = nkge  # the comparison (c) learns nKGE' itself
    if not args.no_compare:
        rng = np.random.default_rng(args.seed)
        keep_members = rng.choice(np.unique(ts.member), size=min(args.compare_members, len(np.unique(ts.member))),
                                  replace=False)
        print(f"(c) study folds, {len(keep_members)} members per basin (the same ids everywhere, seed {args.seed})")
        print("backend        attributes   columns  r(nKGE')  r(KGE')  r<0.5   selection KGE' median [95% CI]  "
              "> default  seconds")
        variants = [("xgboost", "study27", xgb), ("random_forest", "study27", {"n_estimators": 50, "max_depth": 12}),
                    ("torch_mlp", "study27", {"max_epochs": 40, "patience": 6}), ("xgboost", "all_camels", xgb)]
        sets = {"study27": ts}
        for backend, attr_name, options in variants:
            if attr_name not in sets:
                sets[attr_name] = build(all_camels_attributes())
            full = sets[attr_name]
            sub = full.subset(np.flatnonzero(np.isin(full.member, keep_members)))
            folds = make_folds("study", basins)
            try:
                ho = held_out_selection(factory(backend, args.threads, args.seed, options), sub, folds)
            except Exception as err:  # a missing optional backend: say so and go on
                print(f"{backend:<14} {attr_name:<12} skipped: {type(err).__name__}: {err}")
                continue
            r_n, r_k, low = skill(sub, ho.predicted)
            chosen = kge_of(ho.actual[:, 0])
            pos = {b: i for i, b in enumerate(ts.basins)}
            base = default[[pos[b] for b in ho.basins]]
            better = np.mean(chosen[np.isfinite(base)] > base[np.isfinite(base)])
            print(f"{backend:<14} {attr_name:<12} {len(full.attribute_names):>7}  {r_n:8.3f}  {r_k:7.3f}  "
                  f"{100 * low:4.1f}%   {fmt_ci(chosen):>30}  {100 * better:7.1f}%  {ho.seconds:7.0f}", flush=True)
    print(f"elapsed {time.perf_counter() - t_all:.0f} s", flush=True)


if __name__ == "__main__":
    main()
