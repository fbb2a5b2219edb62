"""CTSM iteration 0: `lsegeo ensemble` makes the design's store (members pending), `lsegeo launch` runs it."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from lsegeo.cli import main
from lsegeo.config import load_config, validate_config
from lsegeo.ensembles.store import DONE, PENDING, open_ensemble
from lsegeo.errors import ConfigError
from lsegeo.io.stores import root_attrs
from lsegeo.models.ctsm.adapter import CTSMModel
from lsegeo.models.ctsm.parameters import load_registry
from lsegeo.models.protocol import ModelAdapter, is_external
from lsegeo.models.registry import get_model
from lsegeo.testing.ctsm_standin import count_invocations, standin_command

BASINS = ["01022500", "01030500"]
PERIODS = {"calibration": ["1980-06-01", "1980-12-31"], "test": ["1981-01-01", "1981-06-30"]}


def _write(path, raw):
    path.write_text(yaml.safe_dump(raw))
    return path


# -- unit tier: the adapter and the configuration key ------------------------------------------------

def test_ctsm_adapter_space_from_the_registry():
    registry = load_registry()
    model = get_model("ctsm")
    assert isinstance(model, CTSMModel) and isinstance(model, ModelAdapter)
    assert is_external(model) and not is_external(get_model("hbv"))
    assert model.forcing_variables == () and model.space.name == "ctsm5.4-calibration"
    assert model.space.names == registry.final16 and len(model.space) == 16
    for p in model.space.parameters:
        row = registry[p.name]
        assert (p.lower, p.upper, p.scale) == (row.lower, row.upper, row.scale)
    assert model.space["zbedrock"].default == 10.0  # per-cell reference mean 10.64 m clipped into [0.1, 10]
    chosen = get_model("ctsm", version="ctsm5.3.012", parameters=["baseflow_scalar", "FMAX"], bounds="sensitivity")
    assert chosen.space.names == ["baseflow_scalar", "FMAX"] and chosen.space.name == "ctsm5.3-sensitivity"
    assert chosen.space["baseflow_scalar"].lower == registry["baseflow_scalar"].sa_lower == 0.0005


@pytest.mark.parametrize("options, words", [
    ({"parameters": ["FMAX", "no_such_param"]}, "'no_such_param' is not a CTSM parameter"),
    ({"parameters": ["FMAX", "FMAX"]}, "without repeats"),
    ({"parameters": ["precip_repartition_glc_all_rain_t"]}, "is bound to"),
    ({"version": "4.5"}, "older than 5.1"),
])
def test_ctsm_adapter_refuses_bad_options(options, words):
    with pytest.raises(ValueError, match=words):
        CTSMModel(**options)


def test_ctsm_adapter_does_not_run_in_process():
    model = get_model("ctsm")
    for call in (lambda: model.runner({}), lambda: model.run({}, np.zeros((1, 16)))):
        with pytest.raises(ConfigError, match=r"external jobs.*lsegeo ensemble CONFIG.*lsegeo launch CONFIG"):
            call()


def test_unknown_parameter_in_model_options_exits_2_naming_it(tmp_path):
    path = _write(tmp_path / "design.yaml", {"ensemble": {
        "model": "ctsm", "model_options": {"version": "5.4", "parameters": ["FMAX", "baseflow_scalr"]}}})
    result = CliRunner().invoke(main, ["ensemble", str(path), "-q"])
    assert result.exit_code == 2, result.output
    assert f"{path}: ensemble.model_options: " in result.output
    assert "'baseflow_scalr' is not a CTSM parameter" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "work").exists()
    hbv = _write(tmp_path / "hbv.yaml", {"ensemble": {"model": "hbv", "model_options": {"version": "5.4"}}})
    result = CliRunner().invoke(main, ["ensemble", str(hbv), "-q"])
    assert result.exit_code == 2 and "ensemble.model_options: not accepted by model 'hbv'" in result.output


def test_model_options_keep_the_digest_of_jobs_without_them(tmp_path):
    from lsegeo.workflows.ensemble import ensemble_job_spec

    plain = validate_config({"work_dir": str(tmp_path)})
    assert "model_options" not in ensemble_job_spec(plain)  # stores made before the key still resume
    ctsm = validate_config({"work_dir": str(tmp_path), "ensemble": {"model": "ctsm", "model_options": {
        "parameters": ["FMAX"]}}})
    assert ensemble_job_spec(ctsm)["model_options"] == {"parameters": ["FMAX"]}


# -- integration tier: ensemble (design, pending) then launch, through the command line ------------------

def test_ctsm_design_then_launch(mini_store, client, tmp_path):
    registry = load_registry()
    store, tally = tmp_path / "ensemble_ctsm.zarr", tmp_path / "tally"
    path = _write(tmp_path / "ctsm.yaml", {
        "work_dir": str(tmp_path / "work"),
        "cluster": {"kind": "address", "address": client.scheduler.address},
        "ensemble": {"basins_store": str(mini_store), "store": str(store), "model": "ctsm",
                     "model_options": {"version": "5.4"}, "basins": BASINS, "n_members": 5, "seed": 7,
                     "objectives": ["kgeprime", "nse"], "periods": PERIODS, "warmup_days": 31, "chunk_basins": 2},
        "external": {"command": standin_command(tally=str(tally)), "work_root": str(tmp_path / "runs"),
                     "timeout_s": 300}})
    result = CliRunner().invoke(main, ["ensemble", str(path), "-q"])
    assert result.exit_code == 0, result.output
    assert f"ensemble store      {store}\n" in result.output
    assert "design              5 ctsm members x 2 basins" in result.output
    assert "pending             10 of 10 (done 0, failed 0)" in result.output
    assert f"lsegeo launch {path}" in result.output
    assert not tally.exists()  # nothing ran

    ens = open_ensemble(store).load()
    final16 = registry.final16
    assert "FMAX" in final16 and "baseflow_scalar" in final16  # what the stand-in reads
    assert [str(p) for p in ens["param"].values] == final16
    assert (ens["status"].values == PENDING).all() and ens.sizes["member"] == 5
    params = ens["params"].values  # (basin, member, param)
    np.testing.assert_array_equal(params[0], params[1])  # one design for every basin
    space = get_model("ctsm").space
    np.testing.assert_array_equal(params[0, 0], space.default)  # member 0: the registry defaults
    for j, name in enumerate(final16):
        row = registry[name]
        assert row.lower <= params[0, :, j].min() and params[0, :, j].max() <= row.upper, name
        if row.default_kind == "global":
            assert params[0, 0, j] == row.default, name
    # members 1-4: a Latin hypercube, one member in each quarter of every parameter's unit range
    unit = space.to_unit(params[0, 1:])
    assert (np.sort(np.floor(unit * 4), axis=0) == np.arange(4)[:, None]).all()
    assert root_attrs(store)["lsegeo_model"] == "ctsm"

    again = CliRunner().invoke(main, ["ensemble", str(path), "-q"])  # the same job: found, not remade
    assert again.exit_code == 0 and "(resumed)" in again.output and "pending             10 of 10" in again.output

    launched = CliRunner().invoke(main, ["launch", str(path), "-q"])  # external.store: the ensemble's store
    assert launched.exit_code == 0, launched.output
    assert "members run         10 in " in launched.output and "pending             0 of 10" in launched.output
    ens = open_ensemble(store).load()
    assert (ens["status"].values == DONE).all()
    scores = ens["scores"].values  # (basin, member, period, objective)
    assert np.isfinite(scores).all()
    assert np.unique(np.round(scores[0, :, 0, 0], 10)).size == 5  # the members' values reach the model
    assert all(count_invocations(tally, b, m) == 1 for b in BASINS for m in range(5))

    after = CliRunner().invoke(main, ["ensemble", str(path), "-q"])
    assert after.exit_code == 0 and "pending             0 of 10 (done 10, failed 0)" in after.output


def test_shipped_ctsm_config_serves_ensemble_and_launch():
    from pathlib import Path

    from lsegeo.workflows.ensemble import ensemble_paths
    from lsegeo.workflows.launch import launch_store

    cfg = load_config(Path(__file__).resolve().parent.parent / "deploy" / "ctsm_launch.yaml")
    assert cfg.ensemble.model == "ctsm" and is_external(get_model("ctsm", **cfg.ensemble.model_options))
    assert cfg.ensemble.model_options["version"] == cfg.external.writer_options["version"]
    assert launch_store(cfg) == ensemble_paths(cfg)[1]
