"""External models: member folders, command templates, runs without a shell, and the dask launcher."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from lsegeo.ensembles.external import run_external_ensemble
from lsegeo.ensembles.store import DONE, FAILED, PENDING, create_ensemble, ensemble_progress, open_ensemble
from lsegeo.models.external import (
    MEMBER_FILE,
    OUTPUT_DIR,
    member_folder,
    prepare_member,
    read_run_record,
    render_command,
    run_command,
    write_run_record,
)
from lsegeo.models.external_settings import ExternalModelSettings
from lsegeo.periods import Period, simulation_window
from lsegeo.testing.ctsm_standin import (
    STANDIN_CELLS,
    count_invocations,
    noleap_days,
    standin_command,
    standin_runoff,
    standin_space,
)

# -- unit tier: templates, commands, folders ------------------------------------------------------


def test_render_command_list_and_string_templates():
    fields = {"member_dir": "/runs/a b/m1", "member": 3, "case": "c3"}
    assert render_command(["run.sh", "--dir", "{member_dir}", "--m={member:03d}"], fields) == \
        ["run.sh", "--dir", "/runs/a b/m1", "--m=003"]
    # one string is split with shlex first: a value with spaces stays one argument, nothing reaches a shell
    assert render_command("./case.submit --case '{case}' {member_dir}; rm -rf /", fields) == \
        ["./case.submit", "--case", "c3", "/runs/a b/m1;", "rm", "-rf", "/"]
    with pytest.raises(ValueError, match=r"unknown placeholder\(s\) \{paramfile\}.*known: \{case\}"):
        render_command(["x", "{paramfile}"], fields)
    with pytest.raises(ValueError, match="empty"):
        render_command([], fields)


def test_run_command_records_exit_status_log_tail_missing_and_timeout(tmp_path):
    code = "import sys\nfor i in range(50): print('line', i)\nprint('boom', file=sys.stderr)\nsys.exit(4)"
    r = run_command([sys.executable, "-c", code], tmp_path, timeout_s=60, tail_lines=3)
    assert r.returncode == 4 and not r.ok and not r.timed_out
    assert r.tail == ("line 48", "line 49", "boom")
    assert "line 0\n" in (tmp_path / "lsegeo_command.log").read_text()
    r = run_command(["/no/such/executable", "x"], tmp_path, timeout_s=5)
    assert r.returncode == 127 and "executable not found" in r.tail[-1]
    t0 = time.perf_counter()
    r = run_command([sys.executable, "-c", "import time; time.sleep(30)"], tmp_path, timeout_s=0.5)
    assert r.timed_out and not r.ok and time.perf_counter() - t0 < 20
    r = run_command([sys.executable, "-c", "import os; print(os.getcwd())"], tmp_path, timeout_s=60)
    assert r.ok and r.tail[-1] == str(tmp_path)


def test_a_timeout_kills_the_commands_children_too(tmp_path):
    """A script that starts its own child (as ``bash -c '... case.submit'`` does): both go at the timeout."""
    import psutil

    child = "import time; time.sleep(120)"
    parent = (f"import subprocess, sys, time\np = subprocess.Popen([sys.executable, '-c', {child!r}])\n"
              "open('child.pid', 'w').write(str(p.pid))\ntime.sleep(120)")
    r = run_command([sys.executable, "-c", parent], tmp_path, timeout_s=8)
    assert r.timed_out
    pid = int((tmp_path / "child.pid").read_text())
    try:
        psutil.Process(pid).wait(timeout=10)  # gone (and reaped by init) once killed
    except psutil.NoSuchProcess:
        pass
    except psutil.TimeoutExpired:
        os.kill(pid, 9)
        raise AssertionError("the command's child outlived its timeout") from None


def test_prepare_member_is_idempotent_and_reuses_finished_runs_only(tmp_path):
    folder = member_folder(tmp_path / "runs", "01022500", 7)
    assert folder == tmp_path / "runs" / "01022500" / "member_00007"
    values = {"FMAX": 0.5, "baseflow_scalar": 0.01}
    paths, digest, reused = prepare_member(folder, basin="01022500", member=7, values=values, command=["x"])
    assert not reused and json.loads((folder / MEMBER_FILE).read_text())["parameters"] == values
    assert paths == {"member_file": str(folder / MEMBER_FILE)}
    (folder / OUTPUT_DIR / "partial.nc").write_text("half a file of a killed run")
    again, digest2, reused = prepare_member(folder, basin="01022500", member=7, values=values, command=["x"])
    assert (again, digest2, reused) == (paths, digest, False) and not (folder / OUTPUT_DIR / "partial.nc").exists()
    failed = run_command([sys.executable, "-c", "raise SystemExit(2)"], folder, timeout_s=30)
    write_run_record(folder, failed, digest, paths)
    assert prepare_member(folder, basin="01022500", member=7, values=values, command=["x"])[2] is False
    ok = run_command([sys.executable, "-c", "open('output/h1.nc', 'w').write('x')"], folder, timeout_s=30)
    write_run_record(folder, ok, digest, paths)
    assert read_run_record(folder)["returncode"] == 0
    assert prepare_member(folder, basin="01022500", member=7, values=values, command=["x"])[2] is True
    assert (folder / OUTPUT_DIR / "h1.nc").exists()  # a finished run's output is kept
    other = prepare_member(folder, basin="01022500", member=7, values={**values, "FMAX": 0.6}, command=["x"])
    assert other[2] is False and not (folder / OUTPUT_DIR / "h1.nc").exists() and read_run_record(folder) is None


def test_ctsm_case_inputs_writer_plugs_into_the_member_folder(tmp_path):
    import netCDF4

    from lsegeo.testing.ctsm import write_paramfile, write_surfdata

    base_p = write_paramfile(tmp_path / "base_params.nc")
    base_s = write_surfdata(tmp_path / "base_surf.nc")
    folder = member_folder(tmp_path / "runs", "01022500", 1)
    opts = {"version": "5.4", "base_paramfile": str(base_p), "base_surfdata": str(base_s)}
    paths, _, reused = prepare_member(folder, basin="01022500", member=1, values={"fff": 1.5, "FMAX": 0.5},
                                      writer="lsegeo.models.ctsm.launch:write_case_inputs", writer_options=opts,
                                      command=["case.submit"])
    assert not reused and paths["paramfile"] == str(folder / "inputs" / "paramfile.nc")
    with netCDF4.Dataset(paths["paramfile"]) as nc:
        assert float(nc.variables["fff"][...]) == 1.5
    nl = open(paths["user_nl_clm"]).read()
    assert f"paramfile = '{paths['paramfile']}'" in nl and f"fsurdat = '{paths['fsurdat']}'" in nl
    argv = render_command("./xmlchange RUN_STARTDATE={start} && cp {user_nl_clm} {member_dir}/",
                          {**paths, "start": "1999-10-01", "member_dir": str(folder)})
    assert argv[1] == "RUN_STARTDATE=1999-10-01" and argv[2] == "&&"  # no shell: '&&' is a plain argument
    with pytest.raises(ValueError, match="fff"):  # out of bounds: nothing written, the launcher records a failure
        prepare_member(folder, basin="01022500", member=1, values={"fff": 99.0},
                       writer="lsegeo.models.ctsm.launch:write_case_inputs", writer_options=opts)


def test_ctsm_case_inputs_take_the_store_bounds_and_a_surfdata_per_basin(tmp_path):
    """A store sampled wider than the registry's calibration bounds (zbedrock 11 m: the study's
    sensitivity range reaches 12.8 m) is written against the store's bounds; ``{basin}`` picks
    each basin's surface dataset."""
    import netCDF4

    from lsegeo.models.ctsm.parameters import load_registry
    from lsegeo.testing.ctsm import write_paramfile, write_surfdata

    upper = load_registry()["zbedrock"].upper
    assert upper < 11.0
    base_p = write_paramfile(tmp_path / "base_params.nc")
    for k, basin in enumerate(("01022500", "01030500")):
        write_surfdata(tmp_path / f"surf_{basin}.nc", lat0=40.0 + k)
    opts = {"version": "5.4", "base_paramfile": str(base_p), "base_surfdata": str(tmp_path / "surf_{basin}.nc")}
    writer = "lsegeo.models.ctsm.launch:write_case_inputs"
    folder = member_folder(tmp_path / "runs", "01030500", 2)
    with pytest.raises(ValueError, match=r"zbedrock.*outside its bounds"):
        prepare_member(folder, basin="01030500", member=2, values={"zbedrock": 11.0}, writer=writer,
                       writer_options=opts)
    paths, _, _ = prepare_member(folder, basin="01030500", member=2, values={"zbedrock": 11.0}, writer=writer,
                                 writer_options=opts, bounds={"zbedrock": (8.5, 12.8), "FMAX": (0.0, 1.0)})
    with netCDF4.Dataset(paths["fsurdat"]) as nc, netCDF4.Dataset(tmp_path / "surf_01030500.nc") as base:
        assert np.array_equal(nc.variables["LATIXY"][:], base.variables["LATIXY"][:])  # this basin's file
        assert float(np.mean(nc.variables["zbedrock"][:])) != float(np.mean(base.variables["zbedrock"][:]))
    with pytest.raises(ValueError, match="zbedrock"):  # the store's bounds are checked too
        prepare_member(folder, basin="01030500", member=2, values={"zbedrock": 13.0}, writer=writer,
                       writer_options=opts, bounds={"zbedrock": (8.5, 12.8)})


# -- integration tier: the stand-in through the launcher on a LocalCluster ------------------------

BASINS = ["01022500", "01030500"]
PERIODS = [Period("calibration", dt.date(1980, 4, 1), dt.date(1980, 12, 31)),
           Period("test", dt.date(1981, 1, 1), dt.date(1981, 12, 31))]
WARMUP = 60  # the window starts 1980-02-01: 29 February 1980 is inside it


def _store(path, basins_store, n_members):
    space = standin_space()
    rng = np.random.default_rng(3)
    params = np.column_stack([rng.uniform(0.1, 0.9, n_members), np.exp(rng.uniform(np.log(5e-4), np.log(0.1),
                                                                                    n_members))])
    return create_ensemble(path, basins_store=basins_store, basins=BASINS, model="ctsm-standin", space=space,
                           params=params, periods=PERIODS, objectives=("kgeprime", "nse", "mae"),
                           warmup_days=WARMUP, chunk_basins=2)


def _direct_scores(folder, basins_store, basin):
    """Scores computed here, straight from the member's history files (not through the launcher)."""
    import netCDF4

    from lsegeo.io.stores import open_store
    from lsegeo.metrics.kernels import score_all

    window = simulation_window(PERIODS, WARMUP)
    files = sorted(folder.glob("output/*.clm2.h1.*.nc"))
    q = {}
    for f in files:
        with netCDF4.Dataset(f) as nc:
            assert nc.variables["time"].calendar == "noleap"
            v = np.asarray(nc.variables["QRUNOFF"][:], dtype="float64")
            w = np.asarray(nc.variables["area"][:], dtype="float64") * np.asarray(nc.variables["landfrac"][:])
            lower = np.asarray(nc.variables["time_bounds"][:, 0])
            import cftime
            for d, row in zip(cftime.num2date(lower, nc.variables["time"].units, "noleap"), v, strict=True):
                q[pd.Timestamp(d.year, d.month, d.day)] = float((row * w).sum() / w.sum() * 86400.0)
    sim = np.array([q.get(d, np.nan) for d in window])
    obs = open_store(basins_store, "observed")["qobs"].sel(basin=basin, time=slice(window[0], window[-1])).values
    out = []
    for p in PERIODS:
        sel = (window >= pd.Timestamp(p.start)) & (window <= pd.Timestamp(p.end))
        res = score_all(sim[sel], obs[sel], window.month.to_numpy()[sel], ["kgeprime", "nse", "mae"])
        out.append([res[o] for o in ("kgeprime", "nse", "mae")])
    return np.array(out), sim, window


def test_standin_members_scored_failures_recorded_nothing_rerun(mini_store, client, tmp_path):
    store = _store(tmp_path / "ens.zarr", mini_store, n_members=3)
    tally = tmp_path / "tally"
    settings = ExternalModelSettings(command=standin_command(tally=str(tally), fail_members=(2,), exit_status=7),
                                     work_root=str(tmp_path / "runs"), log_tail_lines=5, timeout_s=300)
    stats = run_external_ensemble(store, settings, client=client, progress=False)
    assert (stats["ran"], stats["failed"], stats["launch"], stats["pending"]) == (4, 2, 1, 0)
    ens = open_ensemble(store).load()
    assert (ens["status"].values[:, :2] == DONE).all() and (ens["status"].values[:, 2] == FAILED).all()
    assert (ens["run"].values == 1).all()
    assert np.isnan(ens["scores"].values[:, 2]).all()
    for i, basin in enumerate(BASINS):
        msg = str(ens["status_message"].values[i])
        assert "member 2 (launch 1): exit status 7" in msg and "ERROR: stand-in member 2 fails on purpose" in msg
        assert "diagnostic line 29" in msg and "diagnostic line 25" not in msg  # the last 5 lines only
        for m in range(2):
            folder = member_folder(settings.work_root, basin, m)
            direct, sim, window = _direct_scores(folder, mini_store, basin)
            np.testing.assert_allclose(ens["scores"].values[i, m], direct, rtol=1e-10)
            # the history holds the stand-in's own runoff: weighted by area x landfrac, noleap days
            from lsegeo.io.stores import open_store
            f = open_store(mini_store, "forcing")[["prcp", "pet"]].sel(basin=basin).sel(
                time=noleap_days(window[0], window[-1])).load()
            cells = standin_runoff(dict(zip(ens.param.values, ens["params"].values[i, m], strict=True)),
                                   f["prcp"].values, f["pet"].values)
            w = np.asarray(STANDIN_CELLS["area_km2"]) * np.asarray(STANDIN_CELLS["landfrac"])
            expect = pd.Series(cells @ (w / w.sum()), index=noleap_days(window[0], window[-1]))
            np.testing.assert_allclose(sim[np.isfinite(sim)], expect.to_numpy(), rtol=2e-6)
            assert np.isnan(sim[window.get_loc(pd.Timestamp("1980-02-29"))])
        assert ens["scores"].values[i, 0, 0, 0] != ens["scores"].values[i, 1, 0, 0]  # parameters matter
        assert all(count_invocations(tally, basin, m) == 1 for m in range(3))
    again = run_external_ensemble(store, settings, client=client, progress=False)
    assert (again["ran"], again["failed"], again["launch"]) == (0, 0, 2)
    assert all(count_invocations(tally, b, m) == 1 for b in BASINS for m in range(3))  # nothing rerun


_LAUNCH = """
import json, sys
from lsegeo.ensembles.external import run_external_ensemble
from lsegeo.models.external_settings import ExternalModelSettings
from lsegeo.parallel import ClusterSettings
settings = ExternalModelSettings(command=json.loads(sys.argv[2]), work_root=sys.argv[3], timeout_s=300)
run_external_ensemble(sys.argv[1], settings, cluster=ClusterSettings(n_workers=2), progress=False)
"""


@pytest.mark.slow
def test_killed_launch_reruns_only_unfinished_members(mini_store, client, tmp_path):
    store = _store(tmp_path / "ens.zarr", mini_store, n_members=6)
    tally = tmp_path / "tally"
    command = standin_command(tally=str(tally), sleep=1.0)
    settings = ExternalModelSettings(command=command, work_root=str(tmp_path / "runs"), timeout_s=300)
    proc = subprocess.Popen([sys.executable, "-c", _LAUNCH, str(store), json.dumps(command), settings.work_root],
                            start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline, done = time.time() + 300, 0
    while time.time() < deadline and proc.poll() is None:
        try:
            done = ensemble_progress(store)["done"]
        except Exception:  # the store is being written
            done = 0
        if done >= 2:
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = open_ensemble(store).load()
    kept = before["status"].values == DONE
    assert 2 <= kept.sum() < kept.size, before["status"].values
    assert (before["status"].values[~kept] == PENDING).all()
    stats = run_external_ensemble(store, settings, client=client, progress=False)
    after = open_ensemble(store).load()
    assert (after["status"].values == DONE).all() and stats["ran"] == int((~kept).sum())
    assert (after["run"].values[kept] == 1).all() and (after["run"].values[~kept] == 2).all()
    np.testing.assert_array_equal(after["scores"].values[kept], before["scores"].values[kept])
    counts = np.array([[count_invocations(tally, b, m) for m in range(6)] for b in BASINS])
    assert (counts[kept] == 1).all()  # finished members never ran again
    assert (counts >= 1).all() and counts.sum() <= kept.size + 2  # at most the 2 killed in flight ran twice
