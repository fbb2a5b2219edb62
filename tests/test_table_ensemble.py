"""The table adapter on the real CTSM ensemble tables (ctsm_camels/) and a real CAMELS basins store."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from lsegeo.ensembles.store import DONE, FAILED, ensemble_progress, open_ensemble
from lsegeo.errors import InputFormatError, StoreError
from lsegeo.ingest.table import TableEnsemble, ingest_table_ensemble, space_from_table
from lsegeo.io import tables
from lsegeo.io.stores import read_provenance, root_attrs
from lsegeo.models.ctsm.parameters import load_registry
from lsegeo.workflows.ctsm import CTSM_CAMELS_PERIOD, ingest_ctsm_camels, ingest_table_job

SCORED = ["01022500", "01030500", "01031500"]
UNSCORED = ["01013500"]  # in the 627 basins, its streamflow withheld by the study
GAUGES = SCORED + UNSCORED
FAILED_TRIALS = [7, 17, 33, 42, 59, 65, 93, 102, 121, 122, 124, 133, 139, 149, 152, 162, 167, 172, 191, 192, 200]


@pytest.fixture(scope="module")
def src(data_dir):
    return data_dir / "ctsm_camels"


@pytest.fixture(scope="module")
def ctsm_basins_store(data_dir, client, tmp_path_factory):
    """The 4 basins with CAMELS forcing and streamflow over the study's water years 2005-2009."""
    from lsegeo.ingest.camels import ingest_camels

    out = tmp_path_factory.mktemp("ctsm_basins") / "basins.zarr"
    return ingest_camels(data_dir=data_dir, store=out, basins=GAUGES, start="2004-01-01", end="2009-12-31",
                         chunk_basins=4, client=client, progress=False)


def _subset_tables(src, tmp_path):
    """The real tables cut to the 3 scored gauges (files on disk, as a user would give them)."""
    kge = pd.read_csv(src / "sa_kge.csv", dtype=str)[["trial", *SCORED]]
    kge.to_csv(tmp_path / "kge.csv", index=False)
    pd.DataFrame({"gauge_id": GAUGES}).to_csv(tmp_path / "gauges.csv", index=False)
    return tmp_path / "kge.csv", tmp_path / "gauges.csv"


@pytest.fixture(scope="module")
def table_store(src, ctsm_basins_store, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("table")
    kge, gauges = _subset_tables(src, tmp)
    result = ingest_table_job(parameter_sets=src / "sa_parameter_sets.csv", scores=kge,
                              parameter_table=src / "sa_parameter_table.csv", basins_store=ctsm_basins_store,
                              out=tmp / "ens.zarr", period=CTSM_CAMELS_PERIOD, gauges=gauges, model="ctsm",
                              catalog=tmp / "catalog.yaml")
    return result


def test_store_holds_the_tables_exactly(table_store, src):
    ens = open_ensemble(table_store.store).load()
    sets = pd.read_csv(src / "sa_parameter_sets.csv", index_col="trial")
    kge = pd.read_csv(src / "sa_kge.csv", dtype={"trial": int}, index_col="trial")
    assert [str(b) for b in ens.basin.values] == GAUGES
    assert ens.sizes["member"] == 201 and list(ens.param.values) == list(sets.columns)
    np.testing.assert_array_equal(ens["params"].values[2], sets.to_numpy())  # every basin, the same sets
    k = ens["scores"].sel(period="calibration", objective="kgeprime").values
    for i, g in enumerate(SCORED):
        np.testing.assert_array_equal(k[i], kge[g].to_numpy())
    nk = ens["scores"].sel(period="calibration", objective="nkgeprime").values
    np.testing.assert_allclose(nk[:3], k[:3] / (2 - k[:3]))
    assert np.isnan(k[3]).all()  # the withheld basin has no score
    assert ens["has_scores"].values.tolist() == [True, True, True, False]
    st = ens["status"].values
    assert (st[:, FAILED_TRIALS] == FAILED).all()
    ok = np.setdiff1d(np.arange(201), FAILED_TRIALS)
    assert (st[:, ok] == DONE).all()  # the withheld basin ran (elsewhere), it is not a failure
    assert "21 trial(s) failed" in str(ens["status_message"].values[0]) and "trials 7, 17," in str(
        ens["status_message"].values[0])
    assert "withheld" in str(ens["score_note"].values[3, 0]) and ens["score_note"].values[0, 0] == ""
    assert ensemble_progress(table_store.store) == {"pending": 0, "done": 4 * 180, "failed": 4 * 21, "total": 804}
    assert table_store.failed_trials == FAILED_TRIALS and table_store.scored_basins == 3


def test_space_provenance_and_catalog(table_store, src):
    ens = open_ensemble(table_store.store)
    table = pd.read_csv(src / "sa_parameter_table.csv").dropna(subset=["lower"]).set_index("parameter")
    np.testing.assert_allclose(ens["param_lower"].values, table.loc[list(ens.param.values), "lower"].astype(float))
    np.testing.assert_allclose(ens["param_upper"].values, table.loc[list(ens.param.values), "upper"].astype(float))
    attrs = root_attrs(table_store.store)
    assert attrs["lsegeo_model"] == "ctsm" and attrs["lsegeo_periods"]
    assert json.loads(attrs["lsegeo_table_failed_trials"]) == FAILED_TRIALS
    prov = json.dumps(read_provenance(table_store.store))
    from lsegeo.provenance import sha256_file

    assert sha256_file(src / "sa_parameter_sets.csv") in prov  # each table's digest is recorded
    assert table_store.entries and (table_store.catalog.parent / "catalog.yaml").exists()
    assert "ens_ensemble" in table_store.catalog.read_text()


def test_lse_fits_on_the_table_store(table_store, ctsm_basins_store):
    from lsegeo import emulators
    from lsegeo.emulators.settings import EmulatorSettings

    ts = emulators.training_set(table_store.store, ctsm_basins_store)  # nkgeprime on 'calibration'
    assert len(ts) == 3 * 180 and ts.target_names == ["nkgeprime"]
    assert sorted(set(np.asarray(ts.basins)[ts.basin_index])) == SCORED  # the withheld basin has no rows
    em = emulators.create_emulator(EmulatorSettings(kind="lse", backend="random_forest", cv_folds=0, threads=1))
    em.fit(ts)
    pred = np.asarray(em.predict(ts.basin_index[:50], ts.params_unit[:50])).reshape(-1)
    # the forest follows the targets far better than their mean does
    err = np.mean((pred - ts.target[:50, 0]) ** 2)
    assert err < 0.5 * np.var(ts.target[:, 0])


def test_errors_name_what_does_not_match(src, ctsm_basins_store, tmp_path):
    sets = tables.read_parameter_sets(src / "sa_parameter_sets.csv")
    scores = tables.read_score_table(src / "sa_kge.csv")[SCORED]
    space = space_from_table(tables.read_parameter_table(src / "sa_parameter_table.csv"), list(sets.columns))
    with pytest.raises(InputFormatError, match=r"trials do not match: trial\(s\) \[3, 4\] only in the parameter sets$"):
        TableEnsemble(sets, scores.drop(index=[3, 4]), space)
    with pytest.raises(InputFormatError, match=r"trial\(s\) \[1\] only in the scores$"):
        TableEnsemble(sets.drop(index=[1]), scores, space)
    with pytest.raises(InputFormatError, match=r"\['extra_param'\] are not in the parameter table"):
        TableEnsemble(sets.assign(extra_param=1.0), scores, space)
    with pytest.raises(InputFormatError, match=r"01030500"):
        TableEnsemble(sets, scores, space, gauges=["01022500", "01031500"])
    with pytest.raises(InputFormatError, match=r"^kge\.csv, line 1: gauge\(s\) \['01030500'\]"):  # the file named
        TableEnsemble(sets, scores, space, gauges=["01022500", "01031500"], files={"scores": "kge.csv"})
    t = TableEnsemble(sets, scores.rename(columns={"01030500": "09999999"}), space)
    with pytest.raises(StoreError, match=r"09999999"):  # no such gauge in the basins store
        ingest_table_ensemble(tmp_path / "x.zarr", t, basins_store=ctsm_basins_store, period=CTSM_CAMELS_PERIOD)
    assert not (tmp_path / "x.zarr").exists()
    with pytest.raises(InputFormatError, match="not in the CTSM parameter registry|sampled ranges"):
        bad = tmp_path / "ctsm_camels"
        bad.mkdir()
        for f in src.iterdir():
            (bad / f.name).symlink_to(f)
        (bad / "sa_parameter_table.csv").unlink()
        table = pd.read_csv(src / "sa_parameter_table.csv", dtype=str, keep_default_na=False)
        table.loc[table["parameter"] == "fff", "lower"] = "0.03"  # not the range the registry says was sampled
        table.to_csv(bad / "sa_parameter_table.csv", index=False)
        ingest_ctsm_camels(data_dir=tmp_path, basins_store=ctsm_basins_store, out=tmp_path / "y.zarr", catalog="")


def test_registry_space_matches_the_sampled_table(src):
    reg = load_registry()
    sets = tables.read_parameter_sets(src / "sa_parameter_sets.csv")
    space = reg.space(list(sets.columns), "5.1", bounds="sensitivity")
    x = sets.to_numpy()
    assert (x >= space.lower - 1e-12).all() and (x <= space.upper + 1e-12).all()


def test_ingest_table_command_writes_the_store_and_its_catalog_entry(src, ctsm_basins_store, tmp_path):
    from click.testing import CliRunner

    from lsegeo.cli import main
    from lsegeo.io.catalog import catalog_entries

    kge, gauges = _subset_tables(src, tmp_path)
    args = ["ingest", "table", "--parameter-sets", str(src / "sa_parameter_sets.csv"), "--scores", str(kge),
            "--parameter-table", str(src / "sa_parameter_table.csv"), "--basins-store", str(ctsm_basins_store),
            "--out", str(tmp_path / "cli.zarr"), "--start", "2004-10-01", "--end", "2009-09-30",
            "--gauges", str(gauges), "--model", "ctsm", "--catalog", str(tmp_path / "catalog.yaml")]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    ens = open_ensemble(tmp_path / "cli.zarr").load()
    assert [str(b) for b in ens.basin.values] == GAUGES and ens.sizes["member"] == 201
    entries = catalog_entries(tmp_path / "catalog.yaml")
    assert "cli_ensemble" in entries and "STALE" not in entries["cli_ensemble"]
    again = CliRunner().invoke(main, args)  # an existing store is refused without --overwrite
    assert again.exit_code != 0 and "cli.zarr" in again.output
