"""Spatial cross-validation of regionalization methods (lsegeo.regionalize.crossval), with real runs.

24 synthetic basins (4 without observed streamflow) and a 30-member HBV ensemble over them stand
for a calibration store; the 20 basins with scores are cross-validated on the ``study`` folds
(every 5th basin held out) with ``default``, ``donor-nearest``, ``donor-ensemble`` (scored by the
mean of its samples' simulated flows) and a small ``lse-optimise``. The
proposed sets run on a real ``distributed`` cluster (the ``client`` fixture).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr

from lsegeo.errors import InputFormatError, UnknownNameError
from lsegeo.regionalize.crossval import (
    fit_intervals,
    format_table,
    interval_coverage,
    spatial_crossvalidation,
    summary_table,
    to_report_scale,
)
from lsegeo.regionalize.donors import EARTH_RADIUS_KM

METHODS = ["donor-nearest", "donor-ensemble", "lse-optimise"]
N_TRAINING = 20


def _config(stores, out):
    from lsegeo.config import validate_config

    return validate_config({
        "work_dir": str(out.parent),
        "regionalize": {"store": str(stores[1]), "basins_store": str(stores[0]), "crossval_dir": str(out),
                        "crossval_schemes": ["study"], "crossval_methods": METHODS, "samples": 3,
                        "backend_options": {"n_estimators": 30, "max_depth": 4},
                        "donors": {"k": 3, "near": 2, "similar": 1},
                        "optimise": {"pop_size": 16, "generations": 8, "restarts": 1}}})


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """(basins store, ensemble store) of 24 synthetic basins, 30 HBV members run in-process."""
    from lsegeo.testing import synthetic_basins, write_basins_store, write_ensemble_store

    root = tmp_path_factory.mktemp("regionalize_crossval")
    basins = write_basins_store(synthetic_basins(24, seed=3, withheld=[20, 21, 22, 23]), root / "basins.zarr")
    ens = write_ensemble_store(root / "ensemble.zarr", basins, n_members=30, seed=2)
    return basins, ens


@pytest.fixture(scope="module")
def cv(stores, client, tmp_path_factory):
    """(CrossValidation, its folder, its configuration)."""
    out = tmp_path_factory.mktemp("cv_run") / "crossval"
    cfg = _config(stores, out)
    result = spatial_crossvalidation(stores[1], stores[0], out, schemes=["study"], methods=METHODS,
                                     settings=cfg.regionalize.settings(), client=client, progress=False)
    return result, out, cfg


def test_scores_have_one_value_per_method_basin_and_period(cv, stores):
    from lsegeo.ensembles.store import open_ensemble

    scores = cv[0].scores
    assert dict(scores["actual"].sizes) == {"scheme": 1, "method": 4, "basin": N_TRAINING, "period": 2}
    assert list(scores["method"].values) == ["default", *METHODS]
    assert list(scores["period"].values) == ["calibration", "test"]
    assert scores["predicted"].dims == ("scheme", "method", "basin")
    assert scores["calibrated"].dims == ("basin", "period")
    assert np.isfinite(scores["actual"]).all() and np.isfinite(scores["predicted"]).all()
    assert np.isfinite(scores["applicability"]).all() and (scores["applicability"] >= 0).all()
    assert scores.attrs["report_objective"] == "kgeprime" and scores.attrs["objective"] == "nkgeprime"
    # the default set is member 0 of the store: its run here scores as it did there
    ens = open_ensemble(stores[1])
    basins = [str(b) for b in scores["basin"].values]
    member0 = ens["scores"].sel(basin=basins, objective="kgeprime").isel(member=0).transpose("basin", "period")
    np.testing.assert_allclose(scores["actual"].sel({"scheme": "study", "method": "default"}).values, member0.values,
                               rtol=1e-6)
    # "calibrated" is the KGE' of the member with the best nKGE' on the calibration period
    nk = ens["scores"].sel(basin=basins, objective="nkgeprime", period="calibration").values
    best = np.nanargmax(np.where(np.isfinite(nk), nk, -np.inf), axis=1)
    kge = ens["scores"].sel(basin=basins, objective="kgeprime").transpose("basin", "member", "period").values
    np.testing.assert_allclose(scores["calibrated"].values, kge[np.arange(len(basins)), best], rtol=1e-12)


def test_every_basin_is_held_out_once_and_donors_come_from_other_folds(cv, stores):
    from lsegeo.regionalize.folds import make_folds
    from lsegeo.regionalize.training import load_training

    result, out, _ = cv
    s = result.scores.sel(scheme="study")
    basins = [str(b) for b in s["basin"].values]
    fold = s["fold"].values
    np.testing.assert_array_equal(fold, make_folds("study", basins).fold)
    assert sorted(np.bincount(fold).tolist()) == [4] * 5
    seen = []
    for k in range(5):
        got = np.load(out / "study" / f"fold_{k}.npz")
        seen += [str(b) for b in got["basins"]]
        assert sorted(str(b) for b in got["basins"]) == [b for b, f in zip(basins, fold, strict=True) if f == k]
    assert sorted(seen) == sorted(basins)  # exactly one fold each
    # the nearest donor of a held-out basin is the nearest basin of the other folds (haversine by hand)
    tr = load_training(stores[1], stores[0], with_rows=False)
    assert tr.basins == basins
    for i, b in enumerate(basins):
        others = np.flatnonzero(fold != fold[i])
        p0, p, dl = np.radians(tr.lat[i]), np.radians(tr.lat[others]), np.radians(tr.lon[others] - tr.lon[i])
        h = np.sin((p - p0) / 2) ** 2 + np.cos(p0) * np.cos(p) * np.sin(dl / 2) ** 2
        nearest = others[np.argmin(2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(h)))]
        got = s["params"].sel({"basin": b, "method": "donor-nearest"}).values
        np.testing.assert_allclose(got, tr.calibrated[nearest],
                                   rtol=1e-10)


def test_donor_ensemble_is_scored_by_the_mean_flow_of_its_samples(cv, stores):
    """The mean response, recomputed by hand from the runs' series, and its samples' own donors."""
    from lsegeo.ensembles.store import open_ensemble
    from lsegeo.io.stores import open_store
    from lsegeo.metrics.kernels import kgeprime_np
    from lsegeo.periods import period_slices, periods_from_json, simulation_window

    result, out, _ = cv
    s = result.scores.sel(scheme="study")
    basins = [str(b) for b in s["basin"].values]
    runs = open_ensemble(out / "study" / "runs.zarr")
    assert runs.sizes["member"] == 3 + 3   # default, donor-nearest, lse-optimise: one each; donor-ensemble: 2 + 1
    periods = periods_from_json(runs.attrs["lsegeo_periods"])
    window = simulation_window(periods, int(runs.attrs["lsegeo_warmup_days"]))
    cal = period_slices(window, periods)["calibration"]
    obs = open_store(stores[0], "observed")["qobs"].sel(basin=basins).reindex(time=window).values
    params = runs["params"].transpose("basin", "member", "param").values
    qsim = runs["qsim"].transpose("basin", "member", "time").values.astype(np.float64)
    point = s["params"].sel({"method": "donor-nearest"}).values
    folds = np.load(out / "study" / "fold_0.npz")
    assert folds["donor-ensemble/samples"].shape[1:] == (3, params.shape[2])
    assert str(folds["donor-ensemble/response"]) == "mean" and str(folds["donor-nearest/response"]) == "point"
    differs = 0
    for i, b in enumerate(basins):
        # the samples are members 2..4 (after default and donor-nearest); the first is the nearest donor's set
        np.testing.assert_allclose(params[i, 2], point[i], rtol=1e-12)
        mean_flow = qsim[i, 2:5].mean(axis=0)
        by_hand = kgeprime_np(mean_flow[cal][None], obs[i, cal][None])[0]
        got = s["actual"].sel({"method": "donor-ensemble", "basin": b, "period": "calibration"}).item()
        assert got == pytest.approx(by_hand, rel=1e-6, abs=1e-9)
        alone = s["actual"].sel({"method": "donor-nearest", "basin": b, "period": "calibration"}).item()
        differs += abs(got - alone) > 1e-6
    assert differs >= N_TRAINING // 2   # averaging changed the score of most basins


def test_default_is_the_baseline_of_the_table(cv):
    table = cv[0].table
    assert len(table) == 4 * 2 and set(table["method"]) == {"default", *METHODS}
    assert (table["n"] == N_TRAINING).all()
    d = table[table["method"] == "default"]
    assert (d["better_than_default"] == 0).all() and (d["gap_closure"] == 0).all()
    assert np.allclose(d["median"], d["default_median"])
    s = cv[0].scores.sel(scheme="study")
    for r in table.itertuples():
        x = s["actual"].sel({"method": r.method, "period": r.period}).values
        base = s["actual"].sel({"method": "default", "period": r.period}).values
        cal = s["calibrated"].sel(period=r.period).values
        assert r.median == pytest.approx(np.median(x))
        assert r.median_lo <= r.median <= r.median_hi
        assert r.q25 == pytest.approx(np.percentile(x, 25)) and r.q75 == pytest.approx(np.percentile(x, 75))
        assert r.better_than_default == pytest.approx(np.mean(x > base))
        gap = (np.median(x) - np.median(base)) / (np.median(cal) - np.median(base))
        assert r.gap_closure == pytest.approx(gap)
    # the summary of the same scores is reproducible and the Markdown shows it
    again = summary_table(cv[0].scores)
    np.testing.assert_allclose(again["median"], table["median"])
    text = format_table(table)
    lines = text.splitlines()
    assert lines[0].startswith("| scheme | method | calibration median KGE' [95% CI]")
    assert len(lines) == 2 + 4
    opt = table[(table["method"] == "lse-optimise") & (table["period"] == "test")].iloc[0]
    row = next(line for line in lines if line.startswith("| study | lse-optimise |"))
    assert f"{opt['median']:.3f} [{opt['median_lo']:.3f}, {opt['median_hi']:.3f}]" in row
    assert "| 0% | 0.00 |" in next(line for line in lines if line.startswith("| study | default |"))


def test_checkpoints_are_reused_by_a_rerun_and_by_the_job(cv, stores, client):
    from lsegeo.io.atomic import store_id
    from lsegeo.workflows.crossval import crossval_job

    result, out, cfg = cv
    folds = sorted((out / "study").glob("fold_*.npz"))
    assert [f.name for f in folds] == [f"fold_{k}.npz" for k in range(5)]
    assert (out / "study" / "runs.zarr").is_dir()
    before = {f: f.stat().st_mtime_ns for f in folds}
    run_id = store_id(out / "study" / "runs.zarr")
    again = spatial_crossvalidation(stores[1], stores[0], out, schemes=["study"], methods=METHODS,
                                    settings=cfg.regionalize.settings(), client=client, progress=False)
    assert {f: f.stat().st_mtime_ns for f in folds} == before
    np.testing.assert_array_equal(again.scores["actual"].values, result.scores["actual"].values)
    np.testing.assert_array_equal(again.scores["params"].values, result.scores["params"].values)

    # lsegeo crossval on the same settings reuses them too, and writes its tables, coverage and figures
    cv2, files = crossval_job(cfg, client=client, progress=False)
    assert {f: f.stat().st_mtime_ns for f in folds} == before
    assert store_id(out / "study" / "runs.zarr") == run_id  # the runs were not made again
    np.testing.assert_array_equal(cv2.scores["actual"].values, result.scores["actual"].values)
    for key in ("table", "csv", "scores", "coverage", "figure_0"):
        assert files[key].is_file() and files[key].stat().st_size > 0, key
    assert files["table"].read_text().strip() == format_table(cv2.table)
    cover = json.loads(files["coverage"].read_text())
    assert set(cover) == {f"study/{m}" for m in ["default", *METHODS]}
    assert 0.0 <= cover["study/lse-optimise"]["overall"]["share_inside"] <= 1.0
    with xr.open_dataset(files["scores"]) as nc:
        np.testing.assert_allclose(nc["actual"].values, result.scores["actual"].values)


def test_other_basins_or_settings_recompute_the_folds(cv, stores, client, tmp_path):
    import shutil
    from dataclasses import replace

    from lsegeo.io.atomic import store_id
    from lsegeo.regionalize.folds import make_folds

    result, out, cfg = cv
    copy = tmp_path / "crossval"
    shutil.copytree(out, copy)
    folds = [copy / "study" / f"fold_{k}.npz" for k in range(5)]
    runs = copy / "study" / "runs.zarr"

    def stamps():
        return [f.stat().st_mtime_ns for f in folds]

    # fewer basins: other held-out sets, so every fold and the runs are made again
    before, run_id = stamps(), store_id(runs)
    basins = [str(b) for b in result.scores["basin"].values][:15]
    settings = cfg.regionalize.settings()
    sub = spatial_crossvalidation(stores[1], stores[0], copy, schemes=["study"], methods=METHODS, settings=settings,
                                  basins=basins, client=client, progress=False)
    assert [str(b) for b in sub.scores["basin"].values] == basins
    np.testing.assert_array_equal(sub.scores["fold"].values[0], make_folds("study", basins).fold)
    assert all(a != b for a, b in zip(stamps(), before, strict=True)) and store_id(runs) != run_id
    assert np.isfinite(sub.scores["actual"]).all()

    # another setting: the proposals are made again; the same point estimates reuse the runs
    before, run_id = stamps(), store_id(runs)
    changed = replace(settings, donors=replace(settings.donors, k=1))
    again = spatial_crossvalidation(stores[1], stores[0], copy, schemes=["study"], methods=METHODS, settings=changed,
                                    basins=basins, client=client, progress=False)
    assert all(a != b for a, b in zip(stamps(), before, strict=True))
    assert store_id(runs) == run_id
    np.testing.assert_array_equal(again.scores["actual"].values, sub.scores["actual"].values)

    # the same basins and settings trained on another calibration (another ensemble over the same
    # basins): every fold is made again, not only the methods whose settings changed
    from lsegeo.testing import write_ensemble_store

    other = write_ensemble_store(tmp_path / "other_ensemble.zarr", stores[0], n_members=30, seed=11)
    before = stamps()
    third = spatial_crossvalidation(other, stores[0], copy, schemes=["study"], methods=METHODS, settings=changed,
                                    basins=basins, client=client, progress=False)
    assert all(a != b for a, b in zip(stamps(), before, strict=True))
    for k in range(5):
        with np.load(folds[k]) as got:
            assert "lse-optimise/params" in got and str(got["training"]) != ""
    near = third.scores["params"].sel(method="donor-nearest").values
    assert not np.allclose(near, again.scores["params"].sel(method="donor-nearest").values)


def test_flood_cluster_folds_come_from_the_data_directory_given(stores, client, tmp_path):
    """The clusters of a data directory of one's own decide both the members and the folds."""
    from lsegeo.regionalize.folds import FLOOD_CLUSTER_FILE
    from lsegeo.regionalize.training import load_training

    basins = load_training(stores[1], stores[0], with_rows=False).basins
    assert len(basins) == N_TRAINING
    ours = tmp_path / "data"
    table = ours / FLOOD_CLUSTER_FILE
    table.parent.mkdir(parents=True)
    table.write_text("Camels_IDs,flood_cluster\n" + "".join(f"{int(b)},{1 + i % 3}\n" for i, b in enumerate(basins)))
    result = spatial_crossvalidation(stores[1], stores[0], tmp_path / "cv", schemes=["flood_cluster"],
                                     methods=["donor-nearest"], client=client, progress=False, data_dir=ours)
    fold = result.scores["fold"].sel(scheme="flood_cluster").values
    assert sorted(np.unique(fold).tolist()) == [0, 1, 2]
    np.testing.assert_array_equal(fold, [i % 3 for i in range(N_TRAINING)])


def test_intervals_calibrated_on_held_out_residuals(cv):
    scores = cv[0].scores
    iv = fit_intervals(scores, "study", "lse-optimise", confidence=0.8)
    pred = scores["predicted"].sel({"scheme": "study", "method": "lse-optimise"}).values
    lower, upper = iv.interval(pred, difficulty=scores["applicability"].sel(scheme="study").values)
    assert np.all(lower <= pred + 1e-12) and np.all(pred <= upper + 1e-12) and np.all(upper <= 1.0)
    cov = interval_coverage(scores, "study", "lse-optimise", confidence=0.8,
                            groups={b: ("a" if i % 2 else "b") for i, b in enumerate(scores["basin"].values)})
    assert cov["confidence"] == 0.8
    assert 0.0 <= cov["overall"]["share_inside"] <= 1.0 and cov["overall"]["n"] == N_TRAINING
    assert set(cov["groups"]) == {"a", "b"}
    assert all(0.0 <= g["share_inside"] <= 1.0 for g in cov["groups"].values())


def _two_region_scores(n=600, seed=0):
    """Held-out scores on 5 interleaved folds where region "wet" is predicted 4x better than region "dry"."""
    rng = np.random.default_rng(seed)
    basins = [f"{i:08d}" for i in range(n)]
    region = np.where(np.arange(n) % 2 == 0, "wet", "dry")
    pred = rng.uniform(0.2, 0.8, n)
    actual = pred + rng.normal(0.0, np.where(region == "wet", 0.025, 0.1))
    ds = xr.Dataset({"predicted": (("method", "basin"), pred[None]),
                     "actual": (("method", "basin", "period"), actual[None, :, None]),
                     "applicability": ("basin", np.ones(n)), "fold": ("basin", np.arange(n) // 2 % 5)},
                    coords={"method": ["m"], "basin": basins, "period": ["calibration"]})
    return ds.expand_dims(scheme=["study"]), dict(zip(basins, region, strict=True))


def test_mondrian_intervals_cover_every_region():
    scores, regions = _two_region_scores()
    pooled = interval_coverage(scores, "study", "m", groups=regions)
    by_region = interval_coverage(scores, "study", "m", groups=regions, mondrian=True)
    share = {k: {g: v["groups"][g]["share_inside"] for g in ("wet", "dry")} for k, v in
             (("pooled", pooled), ("mondrian", by_region))}
    # one threshold for both: the wet region is over-covered and the dry one under-covered
    assert share["pooled"]["wet"] > 0.97 and share["pooled"]["dry"] < 0.85
    # a threshold per region: both near 90%
    assert all(abs(v - 0.9) < 0.05 for v in share["mondrian"].values()), share
    assert by_region["mondrian"] and not pooled["mondrian"]
    iv = fit_intervals(scores, "study", "m", groups=regions)
    assert set(iv.to_dict()["group_thresholds"]) == {"wet", "dry"}


def test_to_report_scale_is_exact_for_the_bounded_pair():
    from lsegeo.metrics.kernels import bounded_efficiency

    kge = np.array([-3.0, -0.41, 0.0, 0.37, 0.999, 1.0])
    np.testing.assert_allclose(to_report_scale(bounded_efficiency(kge), "nkgeprime", "kgeprime"), kge, rtol=1e-12)
    np.testing.assert_array_equal(to_report_scale(kge, "kgeprime", "kgeprime"), kge)
    with pytest.raises(InputFormatError, match="nse as kgeprime"):
        to_report_scale(kge, "nse", "kgeprime")


def test_unknown_method_is_refused_before_anything_runs(stores, tmp_path):
    with pytest.raises(UnknownNameError, match="lse-magic"):
        spatial_crossvalidation(stores[1], stores[0], tmp_path / "cv", schemes=["study"], methods=["lse-magic"])
    assert not (tmp_path / "cv").exists()
