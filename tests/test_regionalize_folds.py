"""Spatial fold schemes (lsegeo.regionalize.folds) on real CAMELS codes and the Brunner clusters."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lsegeo.errors import DataNotFoundError, InputFormatError, UnknownBasinError, UnknownNameError
from lsegeo.locations import resolve_data_dir
from lsegeo.regionalize.folds import (
    FLOOD_CLUSTER_FILE,
    PUR_REGION_GROUPS,
    SPATIAL_FOLD_SCHEMES,
    huc02_codes,
    make_folds,
    read_flood_clusters,
)


def _data_dir() -> Path:
    try:
        return resolve_data_dir(expect="camels_us/attributes/camels_name.txt")
    except DataNotFoundError:
        pytest.skip("the CAMELS data directory is not available")


@pytest.fixture(scope="module")
def camels_names() -> pd.DataFrame:
    """The real camels_name.txt: gauge id -> huc_02 (text such as '01')."""
    return pd.read_csv(_data_dir() / "camels_us/attributes/camels_name.txt", sep=";", dtype=str,
                       index_col="gauge_id")


@pytest.fixture(scope="module")
def ctsm_basins() -> list[str]:
    """The 496 gauges of the real CTSM ensemble (columns of sa_kge.csv)."""
    path = _data_dir() / "ctsm_camels" / "sa_kge.csv"
    if not path.exists():
        pytest.skip("ctsm_camels is not in the data directory")
    return [c for c in pd.read_csv(path, nrows=0, dtype=str).columns if c != "trial"]


def _each_held_out_once(folds, basins):
    held = [b for k in range(folds.n_folds) for b in folds.test_basins(k)]
    assert sorted(held) == sorted(basins) and len(held) == len(set(held))
    for train, test in folds:
        assert not set(train) & set(test)
        assert len(train) + len(test) == len(basins)


def test_registry_lists_the_schemes_and_rejects_others():
    assert SPATIAL_FOLD_SCHEMES.names() == ["flood_cluster", "pub", "pur", "study"]
    with pytest.raises(UnknownNameError, match="known fold schemes"):
        make_folds("random_basins", ["01013500", "01022500"])
    with pytest.raises(UnknownNameError):
        SPATIAL_FOLD_SCHEMES.check("leave_one_out")


def test_study_folds_interleave_the_sorted_basins(ctsm_basins):
    shuffled = list(np.random.default_rng(3).permutation(ctsm_basins))
    folds = make_folds("study", shuffled)
    _each_held_out_once(folds, ctsm_basins)
    ordered = sorted(ctsm_basins)
    assert folds.n_folds == 5
    for k in range(5):
        assert sorted(folds.test_basins(k)) == ordered[k::5]
    assert folds.sizes() == [100, 99, 99, 99, 99]
    # the fold follows the gauge, not the position it was given in
    assert dict(zip(folds.basins, folds.fold, strict=True)) == \
        dict(zip(*(lambda f: (f.basins, f.fold))(make_folds("study", ordered)), strict=True))


def test_pub_folds_are_reproducible_from_the_seed(ctsm_basins):
    a = make_folds("pub", ctsm_basins, seed=7)
    b = make_folds("pub", list(reversed(ctsm_basins)), seed=7)
    c = make_folds("pub", ctsm_basins, seed=8)
    _each_held_out_once(a, ctsm_basins)
    assert a.n_folds == 10 and max(a.sizes()) - min(a.sizes()) <= 1
    assert dict(zip(a.basins, a.fold.tolist(), strict=True)) == dict(zip(b.basins, b.fold.tolist(), strict=True))
    assert not np.array_equal(a.fold, c.fold)
    # random, not interleaved: fold 0 is not every 10th sorted basin
    assert sorted(a.test_basins(0)) != sorted(ctsm_basins)[0::10]


def test_pur_groups_on_real_huc_codes(camels_names):
    basins = list(camels_names.index)
    folds = make_folds("pur", basins, attributes=camels_names)
    _each_held_out_once(folds, basins)
    assert folds.n_folds == 7
    assert folds.labels == ["HUC 01+02", "HUC 03+06", "HUC 04+05+07", "HUC 09+10", "HUC 08+11+12+13",
                            "HUC 14+15+16+18", "HUC 17"]
    huc = camels_names["huc_02"].astype(int)
    for k, group in enumerate(PUR_REGION_GROUPS):
        expect = sorted(huc.index[huc.isin(group)])
        assert sorted(folds.test_basins(k)) == expect
    # known gauges: Fish River (Maine, HUC 01), a Pacific Northwest gauge (HUC 17)
    fold = dict(zip(folds.basins, folds.fold.tolist(), strict=True))
    assert fold["01013500"] == 0
    assert fold["14400000"] == 6
    assert folds.sizes() == [int(huc.isin(g).sum()) for g in PUR_REGION_GROUPS]


def test_pur_from_the_basins_store_attributes(synthetic_store):
    from lsegeo.io.stores import open_store

    attrs = open_store(synthetic_store, "attributes")
    basins = [str(b) for b in attrs["basin"].values]
    codes = huc02_codes(attrs)
    folds = make_folds("pur", basins, attributes=attrs)
    group_of = {r: g for g, members in enumerate(PUR_REGION_GROUPS) for r in members}
    assert folds.fold.tolist() == [group_of[codes[b]] for b in basins]


def test_pur_errors():
    with pytest.raises(ValueError, match="HUC-02"):
        make_folds("pur", ["01013500", "01022500"])
    with pytest.raises(UnknownBasinError, match="HUC-02"):
        make_folds("pur", ["01013500", "01022500"], huc02={"01013500": 1})
    with pytest.raises(ValueError, match="no PUR group"):
        make_folds("pur", ["a", "b"], huc02={"a": 1, "b": 19})
    with pytest.raises(ValueError, match="not a HUC-02"):
        huc02_codes(pd.DataFrame({"huc_02": ["01", "x"]}, index=["a", "b"]))


def test_flood_clusters_from_the_file(ctsm_basins):
    table = read_flood_clusters(data_dir=_data_dir())
    raw = pd.read_csv(_data_dir() / FLOOD_CLUSTER_FILE, dtype=str)
    assert len(table) == len(raw) == 671
    assert table["01013500"] == 9 and table["01073000"] == 13
    folds = make_folds("flood_cluster", ctsm_basins, flood_clusters=table)
    _each_held_out_once(folds, ctsm_basins)
    present = sorted({table[b] for b in ctsm_basins})
    assert folds.labels == [f"cluster {c}" for c in present]
    for k, c in enumerate(present):
        assert sorted(folds.test_basins(k)) == sorted(b for b in ctsm_basins if table[b] == c)
    # the same from the file's path
    by_path = make_folds("flood_cluster", ctsm_basins, flood_clusters=_data_dir() / FLOOD_CLUSTER_FILE)
    assert np.array_equal(by_path.fold, folds.fold)


def test_flood_cluster_errors(tmp_path):
    with pytest.raises(UnknownBasinError, match="flood cluster"):
        make_folds("flood_cluster", ["01013500", "99999999"], flood_clusters={"01013500": 9})
    bad = tmp_path / "clusters.txt"
    bad.write_text("gauge,cluster\n01013500,9\n")
    with pytest.raises(InputFormatError, match="Camels_IDs"):
        read_flood_clusters(bad)
    with pytest.raises(DataNotFoundError):
        read_flood_clusters(tmp_path / "absent.txt")


def test_row_folds_match_a_training_set(synthetic_store, synthetic_ensemble_store):
    from lsegeo.emulators.features import training_set

    ts = training_set(synthetic_ensemble_store, synthetic_store)
    folds = make_folds("study", ts.basins, n_folds=2)
    pairs = folds.row_folds(ts)
    assert len(pairs) == 2
    all_test = np.sort(np.concatenate([te for _, te in pairs]))
    assert np.array_equal(all_test, np.arange(len(ts)))
    for k, (train, test) in enumerate(pairs):
        held = {ts.basins[b] for b in ts.basin_index[test]}
        assert held == set(folds.test_basins(k)) & {ts.basins[b] for b in ts.basin_index}
        assert not held & {ts.basins[b] for b in ts.basin_index[train]}
    # a basin with rows needs a fold; the withheld one (attributes, no rows) does not
    with_rows = [ts.basins[b] for b in np.unique(ts.basin_index)]
    assert "90000005" in ts.basins and "90000005" not in with_rows
    assert len(make_folds("study", with_rows, n_folds=2).row_folds(ts)) == 2
    with pytest.raises(UnknownBasinError, match="no 'study' fold"):
        make_folds("study", with_rows[1:], n_folds=2).row_folds(ts)


def test_too_few_basins_or_folds():
    with pytest.raises(ValueError, match="at least 5 basins"):
        make_folds("study", ["a", "b", "c"])
    with pytest.raises(ValueError, match="at least 2 folds"):
        make_folds("pub", ["a", "b", "c"], n_folds=1)
    with pytest.raises(ValueError, match="repeat"):
        make_folds("study", ["a", "a", "b", "c", "d"], n_folds=2)
