"""intake 2 catalogs: entries written by lsegeo open the same datasets as the store itself."""

from __future__ import annotations

import dask.array as da
import pytest
import xarray as xr
import yaml

from lsegeo.errors import StoreError
from lsegeo.io.catalog import catalog_entries, open_catalog, register_store
from lsegeo.io.stores import open_store


def test_catalog_opens_same_datasets(mini_store, tmp_path):
    cat_path = tmp_path / "catalogs" / "lsegeo.yaml"
    entries = register_store(mini_store, cat_path, name="basins")
    assert entries == ["basins_attributes", "basins_forcing", "basins_observed"]
    cat = open_catalog(cat_path)
    for group in ("attributes", "forcing", "observed"):
        via_intake = cat[f"basins_{group}"].read()
        direct = open_store(mini_store, group)
        xr.testing.assert_identical(via_intake, direct)
    forcing = cat["basins_forcing"].read()
    assert isinstance(forcing["prcp"].data, da.Array)  # lazy
    assert forcing["prcp"].chunks == open_store(mini_store, "forcing")["prcp"].chunks


def test_catalog_is_relative_and_rewritable(mini_store, tmp_path):
    cat_path = mini_store.parent / "cat.yaml"
    register_store(mini_store, cat_path)
    raw = yaml.safe_load(cat_path.read_text())
    assert raw["version"] == 2
    assert raw["data"]["mini_basins_store"]["kwargs"]["url"] == "{CATALOG_DIR}/mini_basins.zarr"
    register_store(mini_store, cat_path)  # rewriting keeps one set of entries
    assert sorted(catalog_entries(cat_path)) == ["mini_basins_attributes", "mini_basins_forcing",
                                                 "mini_basins_observed"]
    meta = raw["entries"]["mini_basins_forcing"]["metadata"]
    assert len(meta["lsegeo_inputs_sha256"]) == 64


def test_catalog_errors(tmp_path):
    with pytest.raises(StoreError, match="does not exist"):
        open_catalog(tmp_path / "none.yaml")
    with pytest.raises(StoreError, match="not a zarr v3 store"):
        register_store(tmp_path, tmp_path / "c.yaml")
    bad = tmp_path / "v1.yaml"
    bad.write_text("sources: {}\n")
    (tmp_path / "s.zarr").mkdir()
    with pytest.raises(StoreError, match="version: 2"):
        from lsegeo.io.catalog import _load

        _load(bad)
