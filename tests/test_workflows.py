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


def test_documented_basin_words_select_what_they_say(synthetic_store, tmp_path):
    """ensemble.basins / direct.basins: 'observed' = basins with streamflow, 'all' = every basin, or a list."""
    import pytest

    from lsegeo.errors import ConfigError
    from lsegeo.testing import synthetic_basins, write_basins_store
    from lsegeo.workflows.direct import direct_basins
    from lsegeo.workflows.ensemble import ensemble_basins

    every = ensemble_basins(synthetic_store, "all")
    assert len(every) == 5
    observed = ensemble_basins(synthetic_store, "observed")
    assert len(observed) == 4 and every[4] not in observed  # the fifth is withheld
    assert ensemble_basins(synthetic_store, [every[2], every[0]]) == sorted([every[2], every[0]])
    assert direct_basins(synthetic_store, "observed") == observed
    with pytest.raises(ConfigError, match="99999999"):
        ensemble_basins(synthetic_store, ["99999999"])
    # 'observed' over a store without any observed basin selects nothing: an error, not an empty ensemble
    none_observed = write_basins_store(synthetic_basins(2, seed=0, withheld=[0, 1]), tmp_path / "dry.zarr")
    with pytest.raises(ConfigError) as info:
        ensemble_basins(none_observed, "observed")
    assert "'observed' selects no basin" in str(info.value) and str(none_observed) in str(info.value)


def test_default_stores_of_every_command(tmp_path, monkeypatch):
    """Every documented `null` store path resolves to its documented place in the work directory."""
    from lsegeo.locations import WORK_DIR_ENV
    from lsegeo.workflows.calibrate import calibration_paths
    from lsegeo.workflows.direct import direct_paths

    cfg = validate_config({"work_dir": str(tmp_path), "calibrate": {"emulator": "sse"}})
    paths = calibration_paths(cfg)
    assert paths.iteration0 == tmp_path / "ensemble_hbv.zarr"  # calibrate.ensemble_store: the ensemble's store
    assert paths.store == tmp_path / "calibration_sse.zarr"
    assert direct_paths(cfg) == (tmp_path / "camels_basins.zarr", tmp_path / "direct_hbv.zarr")
    own = validate_config({"work_dir": str(tmp_path), "ensemble": {"store": str(tmp_path / "mine.zarr")}})
    assert calibration_paths(own).iteration0 == tmp_path / "mine.zarr"
    # work_dir null: LSEGEO_WORK_DIR
    monkeypatch.setenv(WORK_DIR_ENV, str(tmp_path / "env_work"))
    assert basins_store_path(validate_config({})) == tmp_path / "env_work" / "camels_basins.zarr"


def test_a_catalog_directory_is_refused_before_anything_is_written(tmp_path):
    """`--catalog DIR` once wrote the store and then failed with IsADirectoryError; now it fails first."""
    import pytest

    from lsegeo.errors import ConfigError
    from lsegeo.workflows.ingest import ingest_job

    cfg = validate_config({"data_dir": str(tmp_path / "no_data"), "ingest": {"store": str(tmp_path / "b.zarr")}})
    with pytest.raises(ConfigError) as info:
        ingest_job(cfg, catalog=tmp_path, progress=False)
    assert f"catalog {tmp_path} is a directory" in str(info.value) and "'' to skip" in str(info.value)
    assert not (tmp_path / "b.zarr").exists()


def test_lsegeo_errors_in_tasks_are_raised_once_and_not_retried(client, tmp_path):
    """A deterministic input error in a dask task runs once, and comes back as itself (fields kept)."""
    import pytest

    from lsegeo.errors import InputFormatError
    from lsegeo.parallel import submit_task, task_result

    counter = tmp_path / "runs"
    futures = [submit_task(client, _fails_on_odd, str(counter), i, key=f"test-once-{i}-{tmp_path.name}")
               for i in range(2)]
    assert task_result(futures[0]) == 0
    with pytest.raises(InputFormatError) as info:
        task_result(futures[1])
    assert (info.value.path, info.value.line) == ("forcing_1.txt", 11)
    assert counter.read_text().count("1") == 1  # run once: not retried


def _fails_on_odd(counter: str, i: int) -> int:
    from pathlib import Path

    from lsegeo.errors import InputFormatError

    with Path(counter).open("a") as f:
        f.write(f"{i}\n")
    if i % 2:
        raise InputFormatError(f"forcing_{i}.txt", 11, "cell 'abc' is not a number")
    return i
