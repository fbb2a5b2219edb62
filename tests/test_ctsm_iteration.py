"""The next iteration for HPC: propose on a table ensemble, write CTSM case inputs, collect history files."""
from __future__ import annotations

import datetime as dt
import json

import netCDF4
import numpy as np
import pytest

from lsegeo.calibration.hpc import CtsmCase, collect_iteration, propose_hpc_iteration, read_manifest
from lsegeo.calibration.settings import CalibrationSettings
from lsegeo.calibration.store import CalibrationPaths, member_iterations
from lsegeo.emulators.settings import EmulatorSettings
from lsegeo.ensembles.store import DONE, FAILED, PENDING, open_ensemble
from lsegeo.io.ctsm_history import write_history_file
from lsegeo.io.stores import open_store
from lsegeo.metrics.kernels import kgeprime_np
from lsegeo.optimise.settings import ProposalSettings
from lsegeo.testing.ctsm import write_paramfile, write_surfdata
from tests.test_table_ensemble import GAUGES, SCORED, ctsm_basins_store, src, table_store  # noqa: F401

N_PROPOSALS = 2


@pytest.fixture(scope="module")
def proposed(table_store, ctsm_basins_store, client, tmp_path_factory):  # noqa: F811
    tmp = tmp_path_factory.mktemp("hpc")
    write_paramfile(tmp / "params.nc")
    for i, g in enumerate(GAUGES):
        write_surfdata(tmp / f"surfdata_{g}.nc", nlat=1, nlon=1, seed=i)
    paths = CalibrationPaths(iteration0=table_store.store, store=tmp / "cal.zarr", basins_store=ctsm_basins_store)
    settings = CalibrationSettings(
        objectives=("nkgeprime",), period="calibration",
        emulator=EmulatorSettings(kind="lse", backend="random_forest", cv_folds=0, threads=1),
        proposal=ProposalSettings(n_proposals=N_PROPOSALS, pop_size=12, n_gen=4, n_restarts=1, seed=3))
    case = CtsmCase(str(tmp / "params.nc"), str(tmp / "surfdata_{basin}.nc"), version="5.1")
    job = {"calibrate": {"proposals": N_PROPOSALS}}
    manifest = propose_hpc_iteration(paths, settings, case, client=client, job=job)
    return paths, settings, case, job, manifest, tmp


def test_proposals_are_pending_members_with_case_inputs(proposed):
    paths, _, _, _, manifest, _ = proposed
    ens = open_ensemble(paths.store).load()
    assert ens.sizes["member"] == 201 + N_PROPOSALS
    it = member_iterations(paths.store)
    assert (it[201:] == 1).all() and (it[:201] == 0).all()
    assert (ens["status"].values[:, 201:] == PENDING).all()
    m = read_manifest(manifest)
    assert m["iteration"] == 1 and len(m["members"]) == len(GAUGES) * N_PROPOSALS
    names = [str(p) for p in ens.param.values]
    for row in m["members"]:
        b = GAUGES.index(row["basin"])
        values = dict(zip(names, ens["params"].values[b, row["member"]].tolist(), strict=True))
        nl = open(row["user_nl_clm"]).read()
        assert "paramfile = '" in nl and "fsurdat = '" in nl
        # 5.1 reads baseflow_scalar from the namelist, fff from the parameter file, FMAX from the surface dataset
        assert f"baseflow_scalar = {values['baseflow_scalar']!r}" in nl
        with netCDF4.Dataset(f"{row['folder']}/paramfile.nc") as nc:
            assert float(nc["fff"][...]) == pytest.approx(values["fff"], rel=1e-12)
        with netCDF4.Dataset(f"{row['folder']}/fsurdat.nc") as nc:
            assert float(nc["FMAX"][...].mean()) == pytest.approx(values["FMAX"], rel=1e-6)


def test_propose_again_returns_the_same_manifest(proposed, client):
    paths, settings, case, job, manifest, _ = proposed
    assert propose_hpc_iteration(paths, settings, case, client=client, job=job) == manifest
    assert open_ensemble(paths.store).sizes["member"] == 201 + N_PROPOSALS  # nothing proposed twice


def _history(folder, q_mm_day, **kw):
    """A CTSM daily h1 file (noleap, QRUNOFF mm/s) of one grid cell over WY2005-2009."""
    noleap = [d for d in np.arange(np.datetime64("2004-10-01"), np.datetime64("2009-10-01"))
              if not str(d).endswith("-02-29")]
    (folder / "output").mkdir(exist_ok=True)
    return write_history_file(folder / "output" / "case.clm2.h1.2004-10-01-00000.nc", start=dt.date(2004, 10, 1),
                              values_mm_s=(q_mm_day[: len(noleap)] / 86400.0)[:, None], reference=dt.date(2004, 10, 1),
                              area_km2=[100.0], landfrac=[1.0], lon=[290.0], lat=[45.0], **kw)


def test_collect_scores_arrived_histories_and_keeps_the_rest_pending(proposed, ctsm_basins_store):  # noqa: F811
    paths, _, _, _, manifest, _ = proposed
    from pathlib import Path

    rows = read_manifest(manifest)["members"]
    obs = open_store(ctsm_basins_store, "observed")["qobs"].sel(time=slice("2004-10-01", "2009-09-30")).load()
    good, bad, withheld = rows[0], rows[1], next(r for r in rows if r["basin"] not in SCORED)
    o = obs.sel(basin=good["basin"]).values.astype(float)
    o_noleap = o[~((obs.time.dt.month == 2) & (obs.time.dt.day == 29)).values]
    sim = 0.8 * np.nan_to_num(o_noleap, nan=1.0) + 0.3
    _history(Path(good["folder"]), sim)
    _history(Path(bad["folder"]), sim, variable="QRUNOF")  # no QRUNOFF: the member fails
    _history(Path(withheld["folder"]), sim)
    counts = collect_iteration(manifest)
    assert counts["done"] == 2 and counts["failed"] == 1
    assert counts["missing"] == len(rows) - 3 and counts["pending"] == len(rows) - 3
    ens = open_ensemble(paths.store).load()
    b = [str(x) for x in ens.basin.values].index(good["basin"])
    assert ens["status"].values[b, good["member"]] == DONE
    # the score is KGE' of the simulation on the observation days (29 February not simulated)
    feb29 = ((obs.time.dt.month == 2) & (obs.time.dt.day == 29)).values
    q = np.full(len(o), np.nan)
    q[~feb29] = sim
    want = float(np.ravel(kgeprime_np(q, o))[0])
    got = float(ens["scores"].sel(period="calibration", objective="kgeprime").values[b, good["member"]])
    assert got == pytest.approx(want, rel=1e-6) and 0.5 < got <= 1.0
    bb = [str(x) for x in ens.basin.values].index(bad["basin"])
    assert ens["status"].values[bb, bad["member"]] == FAILED
    assert "QRUNOFF" in str(ens["status_message"].values[bb])
    w = [str(x) for x in ens.basin.values].index(withheld["basin"])
    assert ens["status"].values[w, withheld["member"]] == DONE
    assert np.isnan(ens["scores"].values[w, withheld["member"]]).all()  # withheld streamflow is never used
    from click.testing import CliRunner

    from lsegeo.cli import main

    again = CliRunner().invoke(main, ["collect", str(manifest)])  # the command: nothing is collected twice
    assert again.exit_code == 0, again.output
    assert collect_iteration(manifest)["already"] == 3
    assert json.loads(open(manifest).read())["store"] == str(paths.store.resolve())


def test_the_rest_run_through_the_launcher_with_the_stores_bounds(proposed, client):
    """Propose here, run there: the launcher runs the still-pending proposals (case inputs written
    against the store's own bounds, each basin's surface dataset) and scores their history files."""
    from pathlib import Path

    from lsegeo.ensembles.external import run_external_ensemble
    from lsegeo.models.external_settings import ExternalModelSettings
    from lsegeo.testing.ctsm_standin import case_input_values, standin_command

    paths, _, _, _, manifest, tmp = proposed
    pending = [r for r in read_manifest(manifest)["members"]
               if open_ensemble(paths.store)["status"].values[GAUGES.index(r["basin"]), r["member"]] == PENDING]
    assert pending
    settings = ExternalModelSettings(
        command=standin_command(case_inputs=True), work_root=str(tmp / "launch"), timeout_s=300,
        inputs_writer="lsegeo.models.ctsm.launch:write_case_inputs",
        writer_options={"version": "5.1", "base_paramfile": str(tmp / "params.nc"),
                        "base_surfdata": str(tmp / "surfdata_{basin}.nc")})
    stats = run_external_ensemble(paths.store, settings, client=client, progress=False)
    assert stats["ran"] == len(pending) and stats["failed"] == 0, stats
    ens = open_ensemble(paths.store).load()
    names = [str(p) for p in ens.param.values]
    for r in pending:
        b = GAUGES.index(r["basin"])
        assert ens["status"].values[b, r["member"]] == DONE
        assert np.isfinite(ens["scores"].values[b, r["member"]]).all() == (r["basin"] in SCORED)
    r = pending[0]
    b = GAUGES.index(r["basin"])
    folder = Path(settings.work_root) / r["basin"] / f"member_{r['member']:05d}" / "inputs"
    values = dict(zip(names, ens["params"].values[b, r["member"]].tolist(), strict=True))
    with netCDF4.Dataset(folder / "paramfile.nc") as nc:
        assert float(nc["fff"][...]) == pytest.approx(values["fff"], rel=1e-12)
    with netCDF4.Dataset(folder / "fsurdat.nc") as nc, netCDF4.Dataset(tmp / f"surfdata_{r['basin']}.nc") as base:
        assert np.array_equal(nc["LATIXY"][:], base["LATIXY"][:])
        assert float(nc["FMAX"][...].mean()) == pytest.approx(values["FMAX"], rel=1e-6)
    # the stand-in ran on what CTSM reads (fsurdat.nc, user_nl_clm), which are the member's values
    read = case_input_values(folder)
    assert read["FMAX"] == pytest.approx(values["FMAX"], rel=1e-6)
    assert read["baseflow_scalar"] == pytest.approx(values["baseflow_scalar"], rel=1e-12)
    log = (folder.parent / "lsegeo_command.log").read_text()
    assert "parameters from the case inputs" in log
