"""``lsegeo direct CONFIG``: direct calibration by DDS from a configuration, run as a user runs it."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from conftest import MINI_GAUGES

from lsegeo.cli import main

# the mini store holds 1980-1981: a year to calibrate on, half a year to test, 180 warm-up days
MINI_PERIODS = {"calibration": ["1981-01-01", "1981-12-31"], "test": ["1980-07-01", "1980-12-31"]}
MINI_OBSERVED = [g for g in MINI_GAUGES if g != "01013500"]  # 01013500 is withheld


def _write(path, raw: dict):
    path.write_text(yaml.safe_dump(raw))
    return path


def test_direct_help():
    result = CliRunner().invoke(main, ["direct", "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage: " in result.output and "--budget" in result.output and "--overwrite" in result.output
    listing = CliRunner().invoke(main, ["--help"])
    assert "direct    calibrate every basin by DDS" in listing.output


def test_bad_key_in_the_direct_section_names_it(tmp_path):
    cfg = _write(tmp_path / "bad.yaml", {"direct": {"budgett": 10}})
    result = CliRunner().invoke(main, ["direct", str(cfg)])
    assert result.exit_code == 2, result.output
    assert "direct.budgett" in result.output and "unknown key" in result.output
    assert "Traceback" not in result.output


def test_budget_option_is_validated_like_the_key(tmp_path):
    """--budget below a configured checkpoint is refused by the same validation as the file."""
    cfg = _write(tmp_path / "ck.yaml", {"direct": {"checkpoints": [50]}})
    result = CliRunner().invoke(main, ["direct", str(cfg), "--budget", "20"])
    assert result.exit_code == 2, result.output
    assert "command line" in result.output and "direct" in result.output and "Traceback" not in result.output


def test_direct_command_calibrates_the_mini_store(mini_store, client, tmp_path):
    """The command calibrates every observed basin of the store into <work dir>/direct_hbv.zarr, on the
    configured cluster (here the test's running scheduler), with --budget overriding direct.budget."""
    from lsegeo.calibration.direct import open_direct

    raw = {"work_dir": str(tmp_path / "work"),
           "cluster": {"kind": "address", "address": client.scheduler.address},
           "direct": {"basins_store": str(mini_store), "basins": "observed", "budget": 40, "chains": 2,
                      "periods": MINI_PERIODS, "warmup_days": 180, "chunk_basins": 2, "seed": 3}}
    cfg = _write(tmp_path / "direct.yaml", raw)
    result = CliRunner().invoke(main, ["direct", str(cfg), "--budget", "24", "--quiet"])
    assert result.exit_code == 0, result.output
    store = tmp_path / "work" / "direct_hbv.zarr"
    assert store.exists()
    assert str(store) in result.output and f"{len(MINI_OBSERVED)} calibrated" in result.output
    assert "KGE' calibration" in result.output and "KGE' test" in result.output

    ds = open_direct(store).load()
    assert sorted(map(str, ds.basin.values)) == MINI_OBSERVED
    assert ds.sizes["run"] == 24 and (ds["runs"].values == 24).all()
    assert ds.attrs["lsegeo_budget"] == 24 and ds.attrs["lsegeo_chains"] == 2
    assert list(map(str, ds.period.values)) == ["calibration", "test"]
    best = ds["best_score"].sel(period="calibration").values
    default = ds["default_score"].sel(period="calibration").values
    assert np.isfinite(best).all() and np.isfinite(default).all()
    assert (best >= default).all(), (best, default)
    # the history is the best-so-far calibration score: from the default set up to the best
    hist = ds["history"].values
    assert (np.diff(hist, axis=1) >= 0).all()
    np.testing.assert_allclose(hist[:, 0], default, rtol=1e-9, atol=1e-12)
    assert "direct calibration: lsegeo " in ds.attrs["history"].splitlines()[0]

    # the store is not replaced without --overwrite
    again = CliRunner().invoke(main, ["direct", str(cfg), "--quiet"])
    assert again.exit_code == 2 and "already exists" in again.output and "Traceback" not in again.output

    # listed ids that the store lacks are a configuration error naming the key
    raw["direct"].update(basins=["01022500", "09999999"], store=str(tmp_path / "other.zarr"))
    listed = CliRunner().invoke(main, ["direct", str(_write(tmp_path / "ids.yaml", raw)), "--quiet"])
    assert listed.exit_code == 2 and "direct.basins" in listed.output and "09999999" in listed.output
    assert not (tmp_path / "other.zarr").exists()


@pytest.mark.parametrize("key", ["basins_store", "store"])
def test_direct_paths_default_in_the_work_dir(tmp_path, key):
    from lsegeo.config import validate_config
    from lsegeo.workflows.direct import direct_paths

    cfg = validate_config({"work_dir": str(tmp_path), "direct": {"model": "hbv"}})
    basins_store, store = direct_paths(cfg)
    assert {"basins_store": basins_store, "store": store}[key] == \
        {"basins_store": tmp_path / "camels_basins.zarr", "store": tmp_path / "direct_hbv.zarr"}[key]
    given = validate_config({"direct": {key: str(tmp_path / "x.zarr")}})
    assert direct_paths(given)[["basins_store", "store"].index(key)] == tmp_path / "x.zarr"
