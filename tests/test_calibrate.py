"""The emulator calibration loop on real basins and a real LocalCluster: LSE, SSE, NSGA-II, resume."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import yaml
import zarr

from lsegeo.calibration.store import calibrated_parameters, calibration_history
from lsegeo.config import validate_config
from lsegeo.emulators.features import space_from_store
from lsegeo.ensembles.store import DONE, append_members, open_ensemble
from lsegeo.errors import ConfigError
from lsegeo.io.stores import open_store
from lsegeo.plots.calibration import plot_calibration
from lsegeo.workflows.calibrate import calibrate_job, calibration_job_spec, calibration_paths
from lsegeo.workflows.ensemble import ensemble_job
from tests.conftest import small_job_config


@contextlib.contextmanager
def _logged():
    """The messages the lsegeo loggers emit (INFO and up) while the block runs."""
    lines: list[str] = []

    class _Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    handler, log = _Collect(logging.INFO), logging.getLogger("lsegeo")
    level = log.level
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        yield lines
    finally:
        log.removeHandler(handler)
        log.setLevel(level)


def _config(basins_store, tmp_path, **calibrate_options):
    raw = small_job_config(basins_store, tmp_path / "iter0.zarr", n_members=30)
    raw["calibrate"] = {"store": str(tmp_path / "cal.zarr"), "iterations": 2, "proposals": 5, "pop_size": 16,
                        "generations": 8, "restarts": 2, "cv_folds": 3, **calibrate_options}
    return raw


@pytest.fixture(scope="module")
def lse_run(small_basins_store, client, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cal")
    cfg = validate_config(_config(small_basins_store, tmp))
    with _logged() as lines:
        store = calibrate_job(cfg, client=client, progress=False)
    return cfg, store, lines


def test_lse_loop_adds_members_and_improves(lse_run, small_basins_store, client, tmp_path):
    cfg, store, lines = lse_run
    ens = open_ensemble(store).load()
    n_basins = 9  # the small basins with observations
    assert ens.sizes["basin"] == n_basins
    assert list(np.bincount(ens["iteration"].values)) == [30, 5, 5]
    assert (ens["status"] == DONE).all()
    hist = calibration_history(store)
    assert list(hist.iteration.values) == [0, 1, 2] and list(hist.runs.values) == [30, 35, 40]
    cal = hist["best_score"].sel(period="calibration")
    assert (cal.diff("iteration") >= 0).all()  # the best simulated score never decreases
    assert any("emulator" in line.lower() or "LSE" in line for line in lines)
    # the 10 proposals beat the 30 Latin-hypercube members of iteration 0 in most basins
    target = calibration_history(store, objective="nkgeprime")["best_score"].sel(period="calibration")
    gain = target.isel(iteration=-1) - target.isel(iteration=0)
    assert int((gain > 0).sum()) >= 7 and float(gain.median()) > 0.03    # measured: 9 of 9, median +0.049
    # and beat spending the same 40 runs per basin on a space-filling design (same seed)
    lhs_store, _ = ensemble_job(validate_config(small_job_config(small_basins_store, tmp_path / "lhs40.zarr",
                                                                 n_members=40)), client=client, progress=False)
    lhs = calibration_history(lhs_store, objective="nkgeprime")["best_score"].sel(period="calibration")
    lhs = lhs.isel(iteration=-1)
    loop = target.isel(iteration=-1)
    assert float(loop.median()) > float(lhs.median()) + 0.03
    assert int((loop > lhs).sum()) >= 5


def test_proposals_are_new_and_within_bounds(lse_run):
    _, store, _ = lse_run
    ens = open_ensemble(store).load()
    lower, upper = ens["param_lower"].values, ens["param_upper"].values
    new = ens["params"].where(ens["iteration"] > 0, drop=True).values
    assert (new >= lower - 1e-12).all() and (new <= upper + 1e-12).all()
    for b in range(ens.sizes["basin"]):  # no proposal repeats a member the basin already had
        p = ens["params"].values[b]
        d = np.abs(p[:, None, :] - p[None, :, :]).sum(-1) + np.eye(len(p)) * 1e9
        assert d.min() > 0


def test_calibrated_parameters_are_best_simulated_member(lse_run):
    _, store, _ = lse_run
    cal = calibrated_parameters(store)
    ens = open_ensemble(store).load()
    scores = ens["scores"].sel(objective="nkgeprime", period="calibration")
    for b in ens.basin.values[:3]:
        m = int(cal["member"].sel(basin=b))
        assert m == int(scores.sel(basin=b).argmax("member"))
        np.testing.assert_array_equal(cal["params"].sel(basin=b).values, ens["params"].sel(basin=b, member=m).values)


def test_outputs_skill_and_figure(lse_run, tmp_path):
    cfg, store, _ = lse_run
    paths = calibration_paths(cfg)
    for k in (1, 2):
        d = paths.emulator(k)
        assert (d / "COMPLETE").exists()
        skill = json.loads((d / "calibration_skill.json").read_text())
        assert skill["training_rows"] == 9 * (30 + 5 * (k - 1))
        assert not list(d.rglob("*.pkl")) and not list(d.rglob("*.pickle")) and not list(d.rglob("*.joblib"))
    group = open_store(store, "calibration")
    assert {"best_score", "calibrated_params", "runs"} <= set(group.data_vars)
    assert json.loads(group.attrs["lsegeo_emulator_skill"])
    png = plot_calibration(calibration_history(store), tmp_path / "cdf.png")
    assert png.stat().st_size > 10_000


def test_prospective_skill_is_the_emulators_prediction_of_its_own_proposals(lse_run):
    """Recorded per iteration: the saved emulator of iteration k against the runs of its proposals."""
    from lsegeo.calibration.loop import prospective_skill
    from lsegeo.calibration.store import load_emulator
    from lsegeo.emulators.skill import _pearson
    from lsegeo.workflows.calibrate import calibration_settings

    cfg, store, lines = lse_run
    paths, settings = calibration_paths(cfg), calibration_settings(cfg)
    ens = open_ensemble(store).load()
    space = space_from_store(ens)
    recorded = json.loads(open_store(store, "calibration").attrs["lsegeo_emulator_skill"])
    for k in (1, 2):
        saved = json.loads((paths.emulator(k) / "prospective_skill.json").read_text())
        assert saved["prospective_rows"] == 9 * 5 and saved["prospective_basins"] == 9
        assert recorded[str(k)]["prospective_targets"] == saved["prospective_targets"]
        assert "cv_targets" in recorded[str(k)]  # cross-validation (cv_folds 3) and prospective side by side
        # by hand: the emulator of iteration k predicts each basin's 5 new members
        em = load_emulator(paths.emulator(k))
        new = ens.isel(member=np.flatnonzero(ens["iteration"].values == k))
        corr, bias = [], []
        for b in new.basin.values:
            u = space.to_unit(new["params"].sel(basin=b).values)
            pred = em.predict(np.full(len(u), em.basins.index(str(b))), u)[:, 0]
            actual = new["scores"].sel(basin=b, period="calibration", objective="nkgeprime").values
            corr.append(_pearson(pred, actual))
            bias.append(np.mean(pred - actual))
        got = saved["prospective_targets"]["nkgeprime"]
        assert got["median_corr"] == pytest.approx(np.nanmedian(corr), abs=1e-9)
        assert got["median_bias"] == pytest.approx(np.median(bias), abs=1e-9)
        assert prospective_skill(k, settings, paths)["prospective_targets"] == saved["prospective_targets"]
    assert any("prospective skill on the 45 members it proposed in iteration 2" in line for line in lines)


def test_rerun_resumes_without_work_and_other_config_refused(lse_run, client):
    cfg, store, _ = lse_run
    with _logged() as lines:
        calibrate_job(cfg, client=client, progress=False)
    assert any("resuming" in line for line in lines)
    assert not any("proposals for" in line for line in lines)  # nothing was proposed or run again
    other = cfg.model_copy(deep=True)
    other.calibrate.proposals = 7
    with pytest.raises(ConfigError, match=r"another configuration \(calibrate.proposals: 5 then, 7 now\)"):
        calibrate_job(other, client=client, progress=False)
    other = cfg.model_copy(deep=True)
    other.ensemble.n_members = 31
    with pytest.raises(ConfigError, match="the iteration-0 part of the configuration differs"):
        calibrate_job(other, client=client, progress=False)
    made = json.loads(zarr.open_group(str(store), mode="r").attrs["lsegeo_calibration_config"])
    assert made == calibration_job_spec(cfg)["calibrate"]  # provenance
    assert made["proposals"] == 5 and made["iterations"] == cfg.calibrate.iterations


def test_interrupted_append_is_redone(small_basins_store, client, tmp_path):
    cfg = validate_config(_config(small_basins_store, tmp_path, iterations=1))
    calibrate_job(cfg.model_copy(update={"calibrate": cfg.calibrate.model_copy(update={"iterations": 1})}),
                  client=client, progress=False)
    # a store where iteration 2 was half appended when the run died: 2 of the 5 proposals
    store = calibration_paths(cfg).store
    ens = open_ensemble(store)
    append_members(store, ens["params"].values[:, :2], iteration=2)
    cfg2 = cfg.model_copy(update={"calibrate": cfg.calibrate.model_copy(update={"iterations": 2})})
    # the job digest differs (iterations), so resume through the same store explicitly
    import zarr

    from lsegeo import provenance
    job = calibration_job_spec(cfg2)
    zarr.open_group(str(store), mode="r+").attrs["lsegeo_calibration_sha256"] = provenance.sha256_json(job)
    calibrate_job(cfg2, client=client, progress=False)
    it = open_ensemble(store)["iteration"].values
    assert list(np.bincount(it)) == [30, 5, 5]


def test_neighbourhood_proposals_surround_the_best_simulated_member(small_basins_store, client, tmp_path):
    cfg = validate_config(_config(small_basins_store, tmp_path, iterations=1, cv_folds=0, local_share=1.0,
                                  local_anchors=1, local_radius=0.02, min_distance=0.001))
    with _logged() as lines:
        store = calibrate_job(cfg, client=client, progress=False)
    assert any("(5 per basin from the neighbourhood search)" in line for line in lines), lines
    ens = open_ensemble(store).load()
    space = space_from_store(ens)
    u = space.to_unit(ens["params"].values)
    it = ens["iteration"].values
    target = ens["scores"].sel(period="calibration", objective="nkgeprime").values
    for b in range(ens.sizes["basin"]):
        best = np.nanargmax(np.where(it == 0, target[b], np.nan))
        d = np.sqrt(((u[b][it == 1] - u[b][best]) ** 2).sum(1))
        assert d.max() < 0.25, (b, d)     # perturbations of the best member of iteration 0 only


def test_sse_loop_with_the_study_scheme(small_basins_store, client, tmp_path):
    cfg = validate_config(_config(small_basins_store, tmp_path, emulator="sse", iterations=1, cv_folds=0,
                                  local_share=0.0, min_distance=0.01))
    store = calibrate_job(cfg, client=client, progress=False)
    hist = calibration_history(store)
    assert list(hist.runs.values) == [30, 35]
    assert (hist["best_score"].sel(period="calibration").diff("iteration") >= 0).all()


def test_nsga2_two_objectives(small_basins_store, client, tmp_path):
    cfg = validate_config(_config(small_basins_store, tmp_path, objectives=["mae", "nse"], iterations=1,
                                  cv_folds=0))
    store = calibrate_job(cfg, client=client, progress=False)
    assert list(np.bincount(open_ensemble(store)["iteration"].values)) == [30, 5]


@pytest.mark.slow
def test_killed_calibration_resumes(small_basins_store, tmp_path):
    """SIGKILL `lsegeo calibrate` once iteration 1's emulator is saved; the rerun finishes without refitting it."""
    raw = _config(small_basins_store, tmp_path)
    cfg_path = tmp_path / "job.yaml"
    cfg_path.write_text(yaml.safe_dump(raw))
    cfg = validate_config(raw)
    marker = calibration_paths(cfg).emulator(1) / "COMPLETE"
    cmd = [sys.executable, "-m", "lsegeo", "calibrate", str(cfg_path), "-q"]
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None and not marker.exists():
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert marker.exists(), "the run ended before iteration 1's emulator was saved"
    fitted_at = marker.stat().st_mtime
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    assert "resuming" in run.stderr and "emulator already fitted" in run.stderr   # progress goes to stderr
    assert marker.stat().st_mtime == fitted_at
    assert list(np.bincount(open_ensemble(calibration_paths(cfg).store)["iteration"].values)) == [30, 5, 5]
