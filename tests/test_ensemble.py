"""The ensemble store on a real LocalCluster: runs, scores, appends, failures, interruption."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import yaml
import zarr

from lsegeo.config import validate_config
from lsegeo.design import latin_hypercube
from lsegeo.ensembles.runner import run_ensemble
from lsegeo.ensembles.store import DONE, FAILED, append_members, create_ensemble, ensemble_progress, open_ensemble
from lsegeo.errors import ConfigError, StoreError
from lsegeo.ingest.camels import ingest_camels
from lsegeo.io.stores import open_store
from lsegeo.metrics.kernels import score_all
from lsegeo.models.registry import get_model
from lsegeo.periods import Period, period_slices, simulation_window
from lsegeo.workflows.ensemble import default_and_best, ensemble_job
from tests.conftest import SMALL_BASINS as BASINS
from tests.conftest import SMALL_PERIODS as PERIODS
from tests.conftest import SMALL_WITHHELD as WITHHELD
from tests.conftest import small_job_config

OBJECTIVES = ["kgeprime", "nse", "mae"]


@pytest.fixture(scope="module")
def basins_store(small_basins_store):
    return small_basins_store


@pytest.fixture(scope="module")
def hbv():
    return get_model("hbv")


@pytest.fixture(scope="module")
def ran_store(basins_store, hbv, client, tmp_path_factory):
    path = tmp_path_factory.mktemp("ens") / "ensemble.zarr"
    design = latin_hypercube(hbv.space, 20, seed=11)
    create_ensemble(path, basins_store=basins_store, basins=BASINS, model="hbv", space=hbv.space, params=design,
                    periods=PERIODS, objectives=OBJECTIVES, warmup_days=365, keep_series=True, chunk_basins=3)
    stats = run_ensemble(path, client=client, progress=False)
    return path, stats


def test_run_completes_every_member(ran_store):
    path, stats = ran_store
    assert stats["ran"] == 12 * 20 and stats["failed"] == 0 and stats["pending"] == 0
    ens = open_ensemble(path).load()
    assert (ens["status"] == DONE).all() and (ens["run"] == 1).all() and (ens["iteration"] == 0).all()
    assert ens["scores"].dims == ("basin", "member", "period", "objective")
    np.testing.assert_array_equal(ens["params"].isel(member=0).values,
                                  np.broadcast_to(ens["param_default"].values, (12, ens.sizes["param"])))


def test_withheld_basins_run_with_nan_scores(ran_store):
    ens = open_ensemble(ran_store[0]).load()
    withheld = ens["scores"].sel(basin=WITHHELD)
    assert withheld.isnull().all()
    assert (ens["status"].sel(basin="01013500") == DONE).all()
    others = ens["scores"].drop_sel(basin=WITHHELD)
    assert others.notnull().all()
    # the rule that leaves them out: no observed day, coverage 0, and a note that says so
    assert (ens["coverage"].sel(basin=WITHHELD) == 0).all() and ens["coverage"].attrs["units"] == "1"
    assert all("not scored: 0 observed day(s)" in n for n in ens["score_note"].sel(basin=WITHHELD).values.ravel())
    assert (ens["coverage"].drop_sel(basin=WITHHELD) == 1).all()  # real gauges fully observed in 1995-2000
    assert (ens["score_note"].drop_sel(basin=WITHHELD) == "").all()


def test_stored_scores_match_series(ran_store, basins_store):
    path, _ = ran_store
    ens = open_ensemble(path)
    window = simulation_window(PERIODS, 365)
    sl = period_slices(window, PERIODS)["calibration"]
    q = ens["qsim"].sel(basin="01022500").values.astype("float64")
    obs = open_store(basins_store, "observed")["qobs"].sel(basin="01022500", time=window).values.astype("float64")
    expected = score_all(q[:, sl], obs[sl], window.month.to_numpy()[sl], OBJECTIVES)
    stored = ens["scores"].sel(basin="01022500", period="calibration").values
    for k, o in enumerate(OBJECTIVES):
        np.testing.assert_allclose(stored[:, k], expected[o], rtol=2e-5)  # qsim is float32


def test_model_matches_direct_run(ran_store, basins_store, hbv):
    path, _ = ran_store
    ens = open_ensemble(path)
    window = simulation_window(PERIODS, 365)
    f = open_store(basins_store, "forcing").sel(basin="01030500", time=window).load()
    q = hbv.run({v: f[v].values.astype("float64") for v in hbv.forcing_variables},
                ens["params"].sel(basin="01030500").values[:3])
    np.testing.assert_allclose(ens["qsim"].sel(basin="01030500").values[:3], q, rtol=1e-6)


def test_append_runs_only_new_members(ran_store, hbv, client):
    path, _ = ran_store
    before = open_ensemble(path).load()
    rng = np.random.default_rng(0)
    new = hbv.space.from_unit(rng.random((12, 5, len(hbv.space))))
    sl = append_members(path, new, iteration=1)
    assert sl == slice(20, 25)
    assert ensemble_progress(path)["pending"] == 12 * 5
    stats = run_ensemble(path, client=client, progress=False)
    assert stats["ran"] == 12 * 5 and stats["pending"] == 0
    after = open_ensemble(path).load()
    assert list(after["iteration"].values) == [0] * 20 + [1] * 5
    assert (after["run"].isel(member=slice(0, 20)) == 1).all() and (after["run"].isel(member=slice(20, 25)) == 2).all()
    np.testing.assert_array_equal(after["scores"].isel(member=slice(0, 20)).values, before["scores"].values)
    np.testing.assert_allclose(after["params"].isel(member=slice(20, 25)).values, new)
    assert after["qsim"].isel(member=slice(20, 25)).sel(basin="01022500").notnull().all()


def test_failed_runs_are_recorded(data_dir, client, hbv, tmp_path):
    # forcing before 1980 does not exist: the window has NaN forcing, so every run of every basin fails
    basins = ingest_camels(data_dir=data_dir, store=tmp_path / "b.zarr", basins=BASINS[:3], start="1979-01-01",
                           end="1981-12-31", client=client, progress=False)
    path = create_ensemble(tmp_path / "e.zarr", basins_store=basins, basins=BASINS[:3], model="hbv", space=hbv.space,
                           params=latin_hypercube(hbv.space, 4, seed=1), objectives=OBJECTIVES, warmup_days=200,
                           periods=[Period("calibration", dt.date(1980, 1, 1), dt.date(1981, 12, 31))])
    stats = run_ensemble(path, client=client, progress=False)
    assert stats["failed"] == 12 and stats["pending"] == 0
    ens = open_ensemble(path).load()
    assert (ens["status"] == FAILED).all() and ens["scores"].isnull().all()
    assert "NaN" in ens["status_message"].values[0] and "prcp" in ens["status_message"].values[0]


def test_create_checks_inputs(basins_store, hbv, tmp_path):
    design = latin_hypercube(hbv.space, 3, seed=1)
    with pytest.raises(StoreError, match="not in the forcing"):
        create_ensemble(tmp_path / "x.zarr", basins_store=basins_store, basins=["02464000"], model="hbv",
                        space=hbv.space, params=design, periods=PERIODS, objectives=OBJECTIVES)
    with pytest.raises(StoreError, match="not covered"):
        create_ensemble(tmp_path / "x.zarr", basins_store=basins_store, basins=BASINS[:1], model="hbv",
                        space=hbv.space, params=design, objectives=OBJECTIVES,
                        periods=[Period("calibration", dt.date(2000, 1, 1), dt.date(2005, 1, 1))])
    with pytest.raises(KeyError, match="unknown objective"):
        create_ensemble(tmp_path / "x.zarr", basins_store=basins_store, basins=BASINS[:1], model="hbv",
                        space=hbv.space, params=design, periods=PERIODS, objectives=["kling"])
    assert not (tmp_path / "x.zarr").exists()


def _job_config(basins_store, store, **ensemble):
    return small_job_config(basins_store, store, objectives=OBJECTIVES, **ensemble)


def test_job_resumes_and_refuses_other_config(basins_store, client, tmp_path):
    cfg = validate_config(_job_config(basins_store, tmp_path / "e.zarr"))
    store, stats = ensemble_job(cfg, client=client, progress=False)
    assert not stats["resumed"] and stats["done"] == 9 * 30  # "observed": the 9 basins with streamflow
    store, stats = ensemble_job(cfg, client=client, progress=False)
    assert stats["resumed"] and stats["ran"] == 0 and stats["skipped_chunks"] == 5
    summary = default_and_best(store)
    assert summary["calibration"]["best"] >= summary["calibration"]["default"]
    assert summary["calibration"]["n_basins"] == 9
    other = validate_config(_job_config(basins_store, tmp_path / "e.zarr", seed=5))
    with pytest.raises(ConfigError, match="another configuration"):
        ensemble_job(other, client=client, progress=False)
    with pytest.raises(ConfigError, match=r"ensemble\.parameters"):
        ensemble_job(validate_config(_job_config(basins_store, tmp_path / "f.zarr", parameters=["TT", "XX"])),
                     client=client, progress=False)


def test_only_chosen_parameters_vary(basins_store, client, tmp_path):
    cfg = validate_config(_job_config(basins_store, tmp_path / "e.zarr", parameters=["FC", "BETA"], n_members=5,
                                      basins=["01022500"]))
    store, _ = ensemble_job(cfg, client=client, progress=False)
    ens = open_ensemble(store).load()
    varying = [p for p in ens.param.values if ens["params"].sel(param=p).std() > 0]
    assert varying == ["FC", "BETA"] or sorted(varying) == ["BETA", "FC"]


@pytest.mark.slow
def test_killed_run_resumes_missing_members_only(basins_store, tmp_path):
    """Kill `lsegeo ensemble` (and its cluster) mid-run with SIGKILL, run it again: only the rest runs."""
    store = tmp_path / "e.zarr"
    cfg_path = tmp_path / "job.yaml"
    cfg_path.write_text(yaml.safe_dump(_job_config(basins_store, store, n_members=4000, chunk_basins=1,
                                                   basins="all")))
    cmd = [sys.executable, "-m", "lsegeo", "ensemble", str(cfg_path), "-q"]
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 240
    done = 0
    while time.time() < deadline and proc.poll() is None:
        try:
            done = ensemble_progress(store)["done"]
        except Exception:  # the store does not exist yet, or is being created
            done = 0
        if done > 0:
            break
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    first = ensemble_progress(store)
    assert 0 < first["done"] < first["total"], first  # interrupted part-way
    before = open_ensemble(store).load()
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    assert "(resumed)" in run.stdout
    after = open_ensemble(store).load()
    assert (after["status"] == DONE).all()
    kept = (before["status"] == DONE).values
    assert (after["run"].values[kept] == 1).all() and (after["run"].values[~kept] == 2).all()
    np.testing.assert_array_equal(after["scores"].values[kept], before["scores"].values[kept])
    assert zarr.open_group(str(store), mode="r").attrs["lsegeo_runs"] == 2


def test_ensemble_command(basins_store, tmp_path):
    from click.testing import CliRunner

    from lsegeo.cli import main

    cfg_path = tmp_path / "job.yaml"
    cfg_path.write_text(yaml.safe_dump(_job_config(basins_store, tmp_path / "e.zarr", n_members=6)))
    result = CliRunner().invoke(main, ["ensemble", str(cfg_path), "-q", "--figure", str(tmp_path / "cdf.png")])
    assert result.exit_code == 0, result.output
    assert "54 done, 0 failed in this launch" in result.output
    assert "KGE' calibration" in result.output and "KGE' test" in result.output
    assert (tmp_path / "cdf.png").stat().st_size > 10_000
    bad = tmp_path / "bad.yaml"
    bad.write_text("ensemble:\n  objectives: [kling]\n")
    result = CliRunner().invoke(main, ["ensemble", str(bad)])
    assert result.exit_code == 2 and "ensemble.objectives" in result.output and "unknown objective" in result.output


# ---------------------------------------------------------------------------------------------
# item 6 of the input-meaning issue: no score from too little data (synthetic basins, unit tier)

SPARSE_DAYS = 17  # observed days kept in a 365-day period


def sparse_basins_store(path):
    """Three synthetic basins (:mod:`lsegeo.testing`); basin 0 keeps 17 observed days of the 365 of 2001 (the
    calibration period of :data:`lsegeo.testing.PERIODS`), basin 1 17 of the 365 of 2002 (the test period)."""
    import dataclasses

    import pandas as pd

    from lsegeo.testing import synthetic_basins, write_basins_store

    syn = synthetic_basins(3, seed=0)
    obs = syn.observed.copy(deep=True)
    q = obs["qobs"].values.copy()
    years = pd.DatetimeIndex(obs["time"].values).year
    for b, year in ((0, 2001), (1, 2002)):
        days = np.flatnonzero(years == year)
        assert days.size == 365
        q[b, np.setdiff1d(days, days[::21][:SPARSE_DAYS])] = np.nan
    obs["qobs"] = (obs["qobs"].dims, q, obs["qobs"].attrs)
    obs["n_observed_days"] = (obs["n_observed_days"].dims, np.isfinite(q).sum(axis=1).astype("int32"),
                              obs["n_observed_days"].attrs)
    syn = dataclasses.replace(syn, observed=obs)
    return write_basins_store(syn, path), syn.basins


@pytest.fixture(scope="module")
def sparse(tmp_path_factory):
    """The sparse basins store and an ensemble of 12 HBV members run over it with the default min_coverage."""
    from lsegeo.testing import write_ensemble_store

    root = tmp_path_factory.mktemp("sparse")
    store, basins = sparse_basins_store(root / "basins.zarr")
    return store, basins, write_ensemble_store(root / "ensemble.zarr", store, n_members=12, seed=3)


def test_score_members_needs_the_minimum_coverage():
    """A period is scored only when at least min_coverage (0.8 by default) of its days are observed."""
    from lsegeo.ensembles.runner import score_members
    from lsegeo.periods import DEFAULT_MIN_COVERAGE

    assert DEFAULT_MIN_COVERAGE == 0.8
    rng = np.random.default_rng(0)
    obs = 1.0 + rng.random(365)
    q = obs[None, :] * (1.0 + 0.2 * rng.random((3, 365)))
    month = np.ones(365, dtype=int)
    slices = {"calibration": slice(0, 365)}

    def with_observed(n, **kw):
        o = obs.copy()
        o[n:] = np.nan
        return score_members(q, o, month, slices, ["kgeprime", "nse"], **kw)[:, 0, :]

    assert np.isnan(with_observed(SPARSE_DAYS)).all()           # 17/365: NaN for every objective
    assert np.isnan(with_observed(291)).all()                   # 0.797
    assert np.isfinite(with_observed(292)).all()                # 292/365 = 0.8 exactly: scored
    assert np.isfinite(with_observed(SPARSE_DAYS, min_coverage=0.04)).all()  # the threshold is a setting
    assert np.isfinite(with_observed(365)).all()


def test_a_period_with_17_observed_days_of_365_is_not_scored(sparse):
    """The issue's case: 17 observed days of 365 give NaN for every objective, coverage 17/365 and a reason; the
    best-member choice then skips the basin instead of picking the 'best' of 17 days."""
    from lsegeo.calibration.store import calibration_history
    from lsegeo.io.stores import root_attrs
    from lsegeo.workflows.ensemble import default_and_best, default_and_best_scores

    _, basins, store = sparse
    ens = open_ensemble(store).load()
    b0, b1, b2 = basins
    assert root_attrs(store)["lsegeo_min_coverage"] == 0.8
    assert (ens["status"] == DONE).all()  # the runs succeeded; the scores are left out by the rule
    cov = ens["coverage"]
    assert cov.attrs["units"] == "1"
    assert float(cov.sel(basin=b0, period="calibration")) == pytest.approx(SPARSE_DAYS / 365, abs=1e-12)
    assert float(cov.sel(basin=b1, period="test")) == pytest.approx(SPARSE_DAYS / 365, abs=1e-12)
    assert float(cov.sel(basin=b0, period="test")) == 1.0 and (cov.sel(basin=b2) == 1.0).all()
    assert ens["scores"].sel(basin=b0, period="calibration").isnull().all()
    assert ens["scores"].sel(basin=b1, period="test").isnull().all()
    assert ens["scores"].sel(basin=b0, period="test").notnull().all()
    assert ens["scores"].sel(basin=b2).notnull().all()
    note = str(ens["score_note"].sel(basin=b0, period="calibration").values)
    assert note == ("not scored: 17 observed day(s) of 365 in the calibration period "
                    "(coverage 0.047 < min_coverage 0.8)")
    assert "17 observed day(s) of 365 in the test period" in str(ens["score_note"].sel(basin=b1, period="test").values)
    assert str(ens["score_note"].sel(basin=b2, period="calibration").values) == ""
    # no best member from 17 days: the basin has none, on every period
    scores = default_and_best_scores(store)
    assert np.isnan(float(scores["calibration"]["best"].sel(basin=b0)))
    assert np.isnan(float(scores["test"]["best"].sel(basin=b0)))
    assert np.isfinite(float(scores["calibration"]["best"].sel(basin=b1)))  # chosen on its 365 observed days
    assert np.isnan(float(scores["test"]["best"].sel(basin=b1)))
    assert default_and_best(store)["calibration"]["n_basins"] == 2
    hist = calibration_history(store, "kgeprime")
    assert int(hist["best_member"].sel(basin=b0).isel(iteration=-1)) == -1
    assert int(hist["best_member"].sel(basin=b2).isel(iteration=-1)) >= 0


def test_min_coverage_is_a_setting(sparse, tmp_path):
    """min_coverage comes from the ensemble section (default 0.8) into the store; 0.04 scores the 17 days."""
    from lsegeo.ensembles.settings import EnsembleSettings
    from lsegeo.testing import PERIODS, WARMUP_DAYS, local_client

    assert EnsembleSettings().min_coverage == 0.8 and validate_config({}).ensemble.min_coverage == 0.8
    cfg = validate_config({"ensemble": {"min_coverage": 0.04}})
    assert cfg.ensemble.min_coverage == 0.04
    with pytest.raises(ConfigError, match=r"ensemble\.min_coverage"):
        validate_config({"ensemble": {"min_coverage": 1.5}})
    basins_store, basins, _ = sparse
    hbv = get_model("hbv")
    path = create_ensemble(tmp_path / "e.zarr", basins_store=basins_store, basins=basins, model="hbv",
                           space=hbv.space, params=latin_hypercube(hbv.space, 4, seed=3), periods=PERIODS,
                           objectives=OBJECTIVES, warmup_days=WARMUP_DAYS, min_coverage=cfg.ensemble.min_coverage)
    with local_client() as c:
        run_ensemble(path, client=c, progress=False)
    ens = open_ensemble(path).load()
    assert ens["scores"].sel(basin=basins[0], period="calibration").notnull().all()
    assert float(ens["coverage"].sel(basin=basins[0], period="calibration")) == pytest.approx(SPARSE_DAYS / 365)
    assert (ens["score_note"] == "").all()
    with pytest.raises(ValueError, match="min_coverage"):
        create_ensemble(tmp_path / "x.zarr", basins_store=basins_store, basins=basins, model="hbv",
                        space=hbv.space, params=latin_hypercube(hbv.space, 2, seed=3), periods=PERIODS,
                        objectives=OBJECTIVES, warmup_days=WARMUP_DAYS, min_coverage=-0.1)
    assert not (tmp_path / "x.zarr").exists()


# ---------------------------------------------------------------------------------------------
# item 7: periods that overlap are refused; the default split is Kratzert et al. (2019)

OLD_PERIODS = "  periods:\n    calibration: [1998-10-01, 2008-09-30]\n    test: [1989-10-01, 1999-09-30]\n"


@pytest.mark.parametrize("section", ["ensemble", "direct"])
def test_overlapping_periods_are_a_config_error(section, tmp_path):
    """The old default periods shared water year 1999: a ConfigError naming both periods and the shared days,
    unless the section sets allow_overlap: true."""
    from lsegeo.config import load_config

    path = tmp_path / "job.yaml"
    path.write_text(f"{section}:\n" + OLD_PERIODS)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    msg = str(info.value)
    assert f"{section}: periods:" in msg and str(path) in msg
    assert "period 'calibration' (1998-10-01 to 2008-09-30)" in msg
    assert "period 'test' (1989-10-01 to 1999-09-30)" in msg
    assert "overlap from 1998-10-01 to 1999-09-30 (365 days)" in msg and "allow_overlap" in msg
    path.write_text(path.read_text() + "  allow_overlap: true\n")
    cfg = load_config(path)
    assert getattr(cfg, section).allow_overlap is True
    assert getattr(cfg, section).periods["calibration"] == (dt.date(1998, 10, 1), dt.date(2008, 9, 30))


def test_default_periods_are_the_kratzert_split_and_do_not_overlap():
    from lsegeo.periods import DEFAULT_PERIODS, check_overlap, period_overlaps

    cfg = validate_config({})
    expected = {"calibration": (dt.date(1999, 10, 1), dt.date(2008, 9, 30)),
                "test": (dt.date(1989, 10, 1), dt.date(1999, 9, 30))}
    assert cfg.ensemble.periods == expected and cfg.direct.periods == expected
    assert {p.name: (p.start, p.end) for p in DEFAULT_PERIODS} == expected
    assert period_overlaps(DEFAULT_PERIODS) == [] and cfg.ensemble.allow_overlap is False
    check_overlap(DEFAULT_PERIODS)
    # a period inside another overlaps too; touching end to start does not
    inner = [Period("calibration", dt.date(2000, 1, 1), dt.date(2000, 12, 31)),
             Period("summer", dt.date(2000, 6, 1), dt.date(2000, 8, 31))]
    with pytest.raises(ValueError, match=r"overlap from 2000-06-01 to 2000-08-31 \(92 days\)"):
        check_overlap(inner)
    check_overlap(inner, allow_overlap=True)
    check_overlap([Period("a", dt.date(2000, 1, 1), dt.date(2000, 1, 31)),
                   Period("b", dt.date(2000, 2, 1), dt.date(2000, 2, 28))])
