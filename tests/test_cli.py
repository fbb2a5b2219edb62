"""The lsegeo command line, run as a user runs it."""

from __future__ import annotations

import importlib.util
import logging
import subprocess
import sys

import pytest
from click.testing import CliRunner

from lsegeo.cli import main
from lsegeo.errors import ConfigError, MissingDependencyError, StoreError, UnknownNameError

COMMANDS = [[], ["info"], ["ingest"], ["ingest", "camels"], ["ensemble"], ["calibrate"], ["sensitivity"], ["compare"],
            ["summary"], ["catalog"], ["catalog", "add"], ["catalog", "list"], ["demo"]]


@pytest.mark.parametrize("cmd", COMMANDS, ids=lambda c: " ".join(c) or "lsegeo")
def test_help_everywhere(cmd):
    result = CliRunner().invoke(main, [*cmd, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage: " in result.output and len(result.output.splitlines()) > 5


def test_unknown_gauge_is_a_clear_error(mini_source, tmp_path):
    result = CliRunner().invoke(main, ["ingest", "camels", "--data-dir", str(mini_source), "-b", "99999999",
                                       "--out", str(tmp_path / "x.zarr"), "--catalog", ""])
    assert result.exit_code == 2
    assert "unknown gauge id '99999999'" in result.output and "Traceback" not in result.output


def test_bad_config_is_a_clear_error(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("ingest:\n  chunk_basins: many\n")
    result = CliRunner().invoke(main, ["ingest", "camels", "--config", str(cfg)])
    assert result.exit_code == 2 and "ingest.chunk_basins" in result.output


def test_ingest_summary_catalog_commands(mini_source, tmp_path):
    """`lsegeo ingest camels` in a fresh process (its own LocalCluster), then summary and catalog."""
    store, cat = tmp_path / "b.zarr", tmp_path / "cat.yaml"
    run = subprocess.run([sys.executable, "-m", "lsegeo", "ingest", "camels", "--data-dir", str(mini_source),
                          "--out", str(store), "--end", "1980-12-31", "--workers", "1", "--catalog", str(cat),
                          "-q"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "basins with forcing 5" in run.stdout and "b_forcing" in run.stdout
    result = CliRunner().invoke(main, ["summary", str(store), "--figure", str(tmp_path / "f.png")])
    assert result.exit_code == 0 and "1980-01-01 to 1980-12-31 (366 days)" in result.output
    assert (tmp_path / "f.png").stat().st_size > 10_000
    result = CliRunner().invoke(main, ["catalog", "list", "--catalog", str(cat)])
    assert "b_observed" in result.output


@pytest.mark.parametrize("error", [
    UnknownNameError("objective", "kgx", ["kge", "kgeprime"]),
    MissingDependencyError("cluster kind 'slurm' needs the package 'dask_jobqueue', which is not installed: "
                           "pip install 'lsegeo[hpc]'"),
    ConfigError("c.yaml: ensemble.model: unknown model"),
    StoreError("x.zarr is not a zarr v3 store"),
], ids=lambda e: type(e).__name__)
def test_every_lsegeo_error_is_one_message(error, monkeypatch, tmp_path):
    """Any LsegeoError raised under a command is printed as its message alone, with exit status 2."""
    import lsegeo.io.summary

    def fail(store):
        raise error

    monkeypatch.setattr(lsegeo.io.summary, "summarize_basins", fail)
    result = CliRunner().invoke(main, ["summary", str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert result.output.strip() == f"Error: {error}" and "Traceback" not in result.output


@pytest.mark.skipif(importlib.util.find_spec("dask_jobqueue") is not None,
                    reason="dask-jobqueue is installed: a slurm cluster would be started")
def test_missing_optional_package_is_a_clear_error(mini_source, tmp_path):
    """A Slurm cluster without dask-jobqueue: the message names the extra; no store is left behind."""
    cfg = tmp_path / "slurm.yaml"
    cfg.write_text("cluster:\n  kind: slurm\n  options: {cores: 2, memory: 4GB}\n")
    result = CliRunner().invoke(main, ["ingest", "camels", "--config", str(cfg), "--data-dir", str(mini_source),
                                       "--out", str(tmp_path / "x.zarr"), "--catalog", "", "-q"])
    assert result.exit_code == 2, result.output
    assert "cluster kind 'slurm'" in result.output and "pip install 'lsegeo[hpc]'" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "x.zarr").exists()


@pytest.mark.parametrize("options, level", [([], logging.INFO), (["-v"], logging.DEBUG),
                                            (["--quiet"], logging.WARNING)])
def test_verbosity_sets_the_log_level(options, level):
    result = CliRunner().invoke(main, [*options, "info"])
    assert result.exit_code == 0, result.output
    assert logging.getLogger("lsegeo").getEffectiveLevel() == level


def test_catalog_lives_in_the_work_dir(synthetic_store, tmp_path, monkeypatch):
    """Without --catalog, `lsegeo catalog add/list` use <work dir>/catalog.yaml, never a repository file."""
    from lsegeo.locations import WORK_DIR_ENV

    monkeypatch.setenv(WORK_DIR_ENV, str(tmp_path / "work"))
    result = CliRunner().invoke(main, ["catalog", "add", str(synthetic_store), "--name", "syn"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "work" / "catalog.yaml").is_file()
    result = CliRunner().invoke(main, ["catalog", "list"])
    assert result.exit_code == 0 and "syn_" in result.output
