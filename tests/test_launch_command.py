"""``lsegeo launch CONFIG``: the external-model launcher from the configuration and the command line."""

from __future__ import annotations

import datetime as dt
import stat
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from lsegeo.cli import main
from lsegeo.config import load_config, validate_config
from lsegeo.ensembles.store import DONE, create_ensemble, open_ensemble
from lsegeo.models.external import member_folder, prepare_member, read_run_record, render_command, run_command
from lsegeo.models.external_settings import ExternalModelSettings
from lsegeo.periods import Period, simulation_window
from lsegeo.testing.ctsm_standin import count_invocations, standin_command, standin_space
from lsegeo.workflows.launch import check_launch_settings, launch_store

DEPLOY = Path(__file__).resolve().parent.parent / "deploy" / "ctsm_launch.yaml"


def _write(path: Path, raw: dict) -> Path:
    path.write_text(yaml.safe_dump(raw))
    return path


# -- unit tier: configuration, errors, the shipped CIME command ------------------------------------

def test_external_section_defaults_and_settings():
    cfg = validate_config({})
    assert cfg.external.settings() == ExternalModelSettings()
    cfg = validate_config({"external": {"command": "run.sh --dir '{member_dir}'", "timeout_s": 60,
                                        "writer_options": {"version": "5.1"}}})
    s = cfg.external.settings()
    assert s.command == "run.sh --dir '{member_dir}'" and s.timeout_s == 60.0 and s.writer_options == {"version": "5.1"}
    listed = validate_config({"external": {"command": ["a", "{member}"]}}).external.settings()
    assert listed.command == ("a", "{member}")


def test_launch_store_defaults(tmp_path):
    assert launch_store(validate_config({"external": {"store": str(tmp_path / "x.zarr")},
                                         "ensemble": {"store": str(tmp_path / "e.zarr")}})) == tmp_path / "x.zarr"
    assert launch_store(validate_config({"ensemble": {"store": str(tmp_path / "e.zarr")}})) == tmp_path / "e.zarr"
    assert launch_store(validate_config({"work_dir": str(tmp_path)})) == tmp_path / "ensemble_hbv.zarr"


@pytest.mark.parametrize("external, key, words", [
    ({"comand": ["x"]}, "external.comand", "unknown key"),
    ({"command": "run.sh 'unclosed"}, "external.command", "not a valid template"),
    ({"command": ["run.sh", "{member"]}, "external.command", "not a valid template"),
    ({"timeout_s": 0}, "external.timeout_s", "greater than 0"),
    ({"case_name": "{basin"}, "external.case_name", "not a valid template"),
    ({"history_glob": "/abs/*.nc"}, "external.history_glob", "relative to the member folder"),
    ({"inputs_writer": "nocolon"}, "external.inputs_writer", "'module:function'"),
])
def test_bad_external_key_exits_2_naming_the_key(tmp_path, external, key, words):
    path = _write(tmp_path / "bad.yaml", {"external": external})
    result = CliRunner().invoke(main, ["launch", str(path)])
    assert result.exit_code == 2, result.output
    assert f"{path}: {key}: " in result.output and words in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("external, words", [
    ({}, "external.command: no command template"),
    ({"command": ["run", "{member_dir}", "{paramfile}"]}, "external.command: unknown placeholder(s) paramfile"),
    ({"command": ["run"], "inputs_writer": "lsegeo.no_such_module:write"}, "external.inputs_writer: inputs writer"),
])
def test_launch_refuses_settings_that_would_fail_every_member(tmp_path, external, words):
    store = tmp_path / "absent.zarr"
    path = _write(tmp_path / "job.yaml", {"external": {"store": str(store), **external}})
    result = CliRunner().invoke(main, ["launch", str(path), "-q"])
    assert result.exit_code == 2 and words in result.output, result.output
    assert not (tmp_path / "work").exists() and not store.exists()


def test_launch_of_a_missing_store_exits_2(tmp_path):
    path = _write(tmp_path / "job.yaml", {"external": {"store": str(tmp_path / "absent.zarr"), "command": ["true"]}})
    result = CliRunner().invoke(main, ["launch", str(path), "-q"])
    assert result.exit_code == 2 and "absent.zarr" in result.output and "Traceback" not in result.output


def _fake_cime(root: Path) -> Path:
    """A CIME checkout whose create_clone makes a case with xmlchange and case.submit that log their arguments."""
    tool = f"#!{sys.executable}\nimport sys, pathlib\n"
    clone = tool + (
        "import argparse, shutil\n"
        "ap = argparse.ArgumentParser(); ap.add_argument('--case'); ap.add_argument('--clone')\n"
        "ap.add_argument('--keepexe', action='store_true'); a = ap.parse_args()\n"
        "assert a.keepexe, 'no --keepexe'\n"
        "case = pathlib.Path(a.case); case.mkdir()\n"
        "shutil.copy(pathlib.Path(a.clone) / 'user_nl_clm', case / 'user_nl_clm')\n"
        "for name in ('xmlchange', 'case.submit'):\n"
        "    (case / name).write_text(pathlib.Path(sys.argv[0]).with_name('logger').read_text())\n"
        "    (case / name).chmod(0o755)\n")
    logger = tool + ("with open(pathlib.Path.cwd() / 'calls.log', 'a') as f:\n"
                     "    f.write(pathlib.Path(sys.argv[0]).name + ' ' + ' '.join(sys.argv[1:]) + '\\n')\n")
    scripts = root / "scripts"
    scripts.mkdir(parents=True)
    for name, text in (("create_clone", clone), ("logger", logger)):
        (scripts / name).write_text(text)
        (scripts / name).chmod((scripts / name).stat().st_mode | stat.S_IXUSR)
    return root


def test_shipped_ctsm_command_clones_sets_the_window_and_submits(tmp_path):
    """deploy/ctsm_launch.yaml's command, run as the launcher runs it, against a fake CIME."""
    from lsegeo.testing.ctsm import write_paramfile, write_surfdata

    cfg = load_config(DEPLOY)
    assert cfg.cluster.kind == "pbs" and cfg.external.inputs_writer == "lsegeo.models.ctsm.launch:write_case_inputs"
    command = list(cfg.external.command)
    i = command.index("lsegeo-ctsm-member")
    assert command[0] == "bash" and "create_clone" in command[2] and "--keepexe" in command[2]
    assert "case.submit --no-batch" in command[2] and "xmlchange" in command[2]
    command[i + 1] = str(_fake_cime(tmp_path / "cime"))
    command[i + 2] = str(tmp_path / "cases" / "camels_{basin}")
    base = tmp_path / "cases" / "camels_01022500"
    base.mkdir(parents=True)
    (base / "user_nl_clm").write_text("hist_nhtfrq = 0,-24\n")
    settings = cfg.external.model_copy(update={
        "command": tuple(command), "work_root": str(tmp_path / "runs"),
        "writer_options": {"version": cfg.external.writer_options["version"],
                           "base_paramfile": str(write_paramfile(tmp_path / "params.nc")),
                           "base_surfdata": str(write_surfdata(tmp_path / "surf.nc"))}}).settings()
    check_launch_settings(settings)
    folder = member_folder(settings.work_root, "01022500", 3)
    paths, _, _ = prepare_member(folder, basin="01022500", member=3, values={"fff": 1.5}, writer=settings.inputs_writer,
                                 writer_options=settings.writer_options, command=settings.command)
    fields = {**paths, "member_dir": str(folder), "basin": "01022500", "member": 3, "start": "1980-02-01",
              "end": "1981-12-31"}
    fields["case"] = settings.case_name.format_map(fields)
    assert fields["case"] == "01022500_m00003"
    argv = render_command(settings.command, fields)
    for attempt in (1, 2):  # the second run finds the case of the first and starts it afresh
        result = run_command(argv, folder, timeout_s=60, tail_lines=10)
        assert result.ok, result.tail
        case = folder / "01022500_m00003"
        calls = (case / "calls.log").read_text().splitlines()
        ndays = (dt.date(1981, 12, 31) - dt.date(1980, 2, 1)).days + 1
        assert calls == [f"xmlchange RUN_STARTDATE=1980-02-01,STOP_OPTION=ndays,STOP_N={ndays}",
                         f"xmlchange DOUT_S=FALSE,RUNDIR={folder}/output", "case.submit --no-batch"], attempt
        nl = (case / "user_nl_clm").read_text()
        assert nl == "hist_nhtfrq = 0,-24\n" + Path(paths["user_nl_clm"]).read_text()  # the member's lines appended
        assert f"paramfile = '{paths['paramfile']}'" in nl


# -- integration tier: the stand-in through `lsegeo launch` on the test cluster ----------------------

BASINS = ["01022500", "01030500"]
PERIODS = [Period("calibration", dt.date(1980, 6, 1), dt.date(1980, 12, 31)),
           Period("test", dt.date(1981, 1, 1), dt.date(1981, 6, 30))]
WARMUP = 31


def test_launch_command_runs_every_member_once(mini_store, client, tmp_path):
    from lsegeo.io.stores import open_store
    from lsegeo.metrics.kernels import score_all
    from lsegeo.models.ctsm.history import basin_runoff

    params = np.array([[0.2, 0.002], [0.7, 0.05]])
    store = create_ensemble(tmp_path / "ens.zarr", basins_store=mini_store, basins=BASINS, model="ctsm-standin",
                            space=standin_space(), params=params, periods=PERIODS, objectives=("kgeprime", "nse"),
                            warmup_days=WARMUP, chunk_basins=2)
    tally, runs = tmp_path / "tally", tmp_path / "runs"
    path = _write(tmp_path / "launch.yaml", {
        "work_dir": str(tmp_path / "work"),
        "cluster": {"kind": "address", "address": client.scheduler.address},
        "external": {"store": str(store), "command": standin_command(tally=str(tally)), "work_root": str(runs),
                     "timeout_s": 300, "log_tail_lines": 5}})
    result = CliRunner().invoke(main, ["launch", str(path), "-q", "--workers", "2"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "members run         4 in " in out and "failed this launch  0" in out
    assert "failed in total     0" in out and "pending             0 of 4" in out
    assert f"store               {store}" in out
    ens = open_ensemble(store).load()
    assert (ens["status"].values == DONE).all() and (ens["run"].values == 1).all()
    scores = ens["scores"].values  # (basin, member, period, objective)
    assert np.isfinite(scores).all()
    assert not np.allclose(scores[:, 0], scores[:, 1])  # the parameters reach the model
    # one member's KGE' recomputed here from its history files
    window = simulation_window(PERIODS, WARMUP)
    folder = member_folder(runs, "01030500", 1)
    assert read_run_record(folder)["returncode"] == 0
    q = basin_runoff(sorted(folder.glob("output/*.clm2.h1.*.nc")), window)
    obs = open_store(mini_store, "observed")["qobs"].sel(basin="01030500", time=slice(window[0], window[-1])).values
    for k, p in enumerate(PERIODS):
        sel = (window >= np.datetime64(p.start)) & (window <= np.datetime64(p.end))
        expect = score_all(q[sel], obs[sel], window.month.to_numpy()[sel], ["kgeprime", "nse"])
        np.testing.assert_allclose(scores[1, 1, k], [expect["kgeprime"], expect["nse"]], rtol=1e-10)
    assert all(count_invocations(tally, b, m) == 1 for b in BASINS for m in range(2))

    again = CliRunner().invoke(main, ["launch", str(path), "-q"])
    assert again.exit_code == 0, again.output
    assert "launch              2" in again.output and "members run         0 in " in again.output
    assert "pending             0 of 4" in again.output
    assert all(count_invocations(tally, b, m) == 1 for b in BASINS for m in range(2))  # nothing ran again
    np.testing.assert_array_equal(open_ensemble(store)["scores"].values, scores)
