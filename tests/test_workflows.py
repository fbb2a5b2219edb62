"""The workflows of the ingest, ensemble and demo commands: configuration in, settings and steps out."""

from __future__ import annotations

import json
import shutil

from lsegeo.config import validate_config
from lsegeo.locations import catalog_path
from lsegeo.provenance import sha256_json
from lsegeo.workflows.ensemble import ensemble_job_spec, ensemble_paths
from lsegeo.workflows.ingest import basins_store_path


def test_default_paths_lie_in_the_work_dir(tmp_path):
    cfg = validate_config({"work_dir": str(tmp_path)})
    assert basins_store_path(cfg) == tmp_path / "camels_basins.zarr"
    assert ensemble_paths(cfg) == (tmp_path / "camels_basins.zarr", tmp_path / "ensemble_hbv.zarr")
    assert catalog_path(cfg.work_dir) == tmp_path / "catalog.yaml"


def test_job_digest_does_not_depend_on_where_the_work_dir_lies(synthetic_store, tmp_path):
    """The same job in two work directories (two checkouts, two machines) has one digest."""
    specs = []
    for where in ("a/work", "b/deeper/work"):
        wd = tmp_path / where
        shutil.copytree(synthetic_store, wd / "basins.zarr")
        cfg = validate_config({"work_dir": str(wd), "ensemble": {"basins_store": str(wd / "basins.zarr"),
                                                                 "store": str(wd / "ens.zarr"), "n_members": 8}})
        specs.append(ensemble_job_spec(cfg))
    assert sha256_json(specs[0]) == sha256_json(specs[1])
    assert str(tmp_path) not in json.dumps(specs[0])
    assert specs[0]["basins_store"].startswith(("sha256:", "id:"))  # the store by content, not by path
    other = validate_config({"work_dir": str(tmp_path / "a/work"),
                             "ensemble": {"basins_store": str(tmp_path / "a/work/basins.zarr"), "n_members": 9}})
    assert sha256_json(ensemble_job_spec(other)) != sha256_json(specs[0])
