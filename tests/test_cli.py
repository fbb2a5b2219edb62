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


@pytest.mark.parametrize("options, option, value", [
    (["--start", "2014-02-30"], "--start", "'2014-02-30' is not a date: day is out of range for month"),
    (["--end", "2014-2-3"], "--end", "'2014-2-3' is not a date: expected a date written YYYY-MM-DD"),
    (["--start", "yesterday"], "--start", "'yesterday' is not a date"),
    (["--start", "2015-01-01", "--end", "2014-01-01"], "--end", "2014-01-01 is before --start 2015-01-01"),
], ids=["no-such-day", "not-iso", "not-a-date", "reversed"])
def test_bad_dates_are_one_message(options, option, value, tmp_path):
    """Bad or reversed dates: one message naming the option and the value, exit status 2, no traceback."""
    result = CliRunner().invoke(main, ["ingest", "camels", "--data-dir", str(tmp_path), "--out",
                                       str(tmp_path / "x.zarr"), "--catalog", "", *options])
    assert result.exit_code == 2, result.output
    assert f"Error: Invalid value for '{option}': {value}" in result.output
    assert result.output.count("Error") == 1 and "Traceback" not in result.output
    assert not (tmp_path / "x.zarr").exists()


def test_an_empty_basins_file_is_an_error(tmp_path):
    """An empty --basins-file selects no basin; it must not fall back to 'every basin'."""
    ids = tmp_path / "ids.txt"
    ids.write_text("\n  \n")
    result = CliRunner().invoke(main, ["ingest", "camels", "--basins-file", str(ids), "--data-dir", str(tmp_path),
                                       "--out", str(tmp_path / "x.zarr")])
    assert result.exit_code == 2, result.output
    assert f"Invalid value for '--basins-file': {ids} lists no gauge id" in result.output
    assert not (tmp_path / "x.zarr").exists()


def test_config_errors_of_item_3_reach_the_command_line_as_one_message(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("ingest:\n  chunk_basins: 8\n  chunk_basins: 16\n")
    result = CliRunner().invoke(main, ["ingest", "camels", "--config", str(cfg)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert f"{cfg}: ingest.chunk_basins: given twice, on lines 2 and 3" in result.output
    cfg.write_text("ensemble:\n  basins: []\n")
    result = CliRunner().invoke(main, ["ensemble", str(cfg)])
    assert result.exit_code == 2 and f"{cfg}: ensemble.basins: an empty list selects no basin" in result.output


@pytest.mark.parametrize("argv, words", [
    (["ingest", "camels", "--workers", "0"], "Invalid value for '--workers'"),
    (["ingest", "camels", "--chunk-basins", "0"], "Invalid value for '--chunk-basins'"),
    (["compare"], "give at least one calibration STORE or --direct STORE"),
    (["compare", "LSE=/no/such/store.zarr"], "/no/such/store.zarr does not exist (expected LABEL=STORE or STORE)"),
], ids=["workers-0", "chunk-basins-0", "compare-nothing", "compare-missing"])
def test_documented_limits_of_options(argv, words):
    result = CliRunner().invoke(main, argv)
    assert result.exit_code == 2, result.output
    assert words in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("value, ok", [("3", False), ("1", False), ("4", True)])
def test_n_base_is_a_power_of_two(value, ok, tmp_path):
    """`lsegeo sensitivity --n-base N`: N a power of 2 (at least 2), checked before any work."""
    from lsegeo.cli import _power_of_two

    if ok:
        assert _power_of_two(None, None, int(value)) == int(value)
        assert _power_of_two(None, None, None) is None  # not given: sensitivity.n_base
        return
    cfg = tmp_path / "c.yaml"
    cfg.write_text("{}\n")
    result = CliRunner().invoke(main, ["sensitivity", str(cfg), "--n-base", value])
    assert result.exit_code == 2 and f"must be a power of 2 (the Sobol' sequence is balanced only then), got {value}" \
        in result.output


def test_compare_labels_bare_stores_by_their_names(tmp_path):
    """`lsegeo compare STORE`: a bare STORE is labelled by its name; LABEL=STORE by LABEL; a label once."""
    import click

    from lsegeo.cli import _labelled

    a, b = tmp_path / "calibration_lse.zarr", tmp_path / "other.zarr"
    a.mkdir(), b.mkdir()
    assert _labelled(None, None, (str(a), f"SSE={b}")) == {"calibration_lse": a, "SSE": b}
    with pytest.raises(click.BadParameter, match="the label 'X' is given twice"):
        _labelled(None, None, (f"X={a}", f"X={b}"))


def test_catalog_name_needs_one_store(synthetic_store, tmp_path):
    result = CliRunner().invoke(main, ["catalog", "add", str(synthetic_store), str(synthetic_store), "--name", "x",
                                       "--catalog", str(tmp_path / "c.yaml")])
    assert result.exit_code == 2 and "--name can only be given with a single store" in result.output
    assert not (tmp_path / "c.yaml").exists()


def test_info_data_dir_is_searched_first(tmp_path):
    result = CliRunner().invoke(main, ["info", "--data-dir", str(tmp_path / "nowhere")])
    assert result.exit_code == 0
    first = result.output.splitlines()[1]
    assert first.split()[:2] == ["missing", str(tmp_path / "nowhere")] and "--data-dir" in first


def test_catalog_empty_string_skips_and_default_is_the_work_dir(mini_source, tmp_path, monkeypatch):
    """`--catalog ''` (documented: skip) registers nothing; without --catalog: <work dir>/catalog.yaml."""
    from lsegeo.locations import WORK_DIR_ENV

    work = tmp_path / "work"
    monkeypatch.setenv(WORK_DIR_ENV, str(work))
    monkeypatch.chdir(tmp_path)  # a catalog written to "." or "" would land here
    base = ["ingest", "camels", "--data-dir", str(mini_source), "--end", "1980-01-31", "--workers", "1", "-q"]
    result = CliRunner().invoke(main, [*base, "--out", str(tmp_path / "a.zarr"), "--catalog", ""])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "a.zarr").is_dir() and "catalog " not in result.output
    assert not (work / "catalog.yaml").exists() and not list(tmp_path.glob("*.yaml"))
    result = CliRunner().invoke(main, [*base, "--basin", "01022500"])  # --out default: <work dir>/camels_basins.zarr
    assert result.exit_code == 0, result.output
    assert (work / "camels_basins.zarr").is_dir() and (work / "catalog.yaml").is_file()
    assert f"catalog {work / 'catalog.yaml'}: camels_basins_" in result.output
    assert "basins with forcing 1 " in result.output


def test_a_damaged_forcing_file_is_reported_once(mini_source, tmp_path):
    """An input error raised in a dask task: printed once (not retried, not logged by the worker), no traceback."""
    import bz2
    import shutil

    from conftest import write_forcing_lines

    src = tmp_path / "data"
    shutil.copytree(mini_source, src, symlinks=True)
    bad = next((src / "camels_us" / "forcing" / "daymet").glob("01030500_*"))
    with bz2.open(bad, "rt") as f:
        lines = f.read().splitlines()
    lines[10] = lines[10].rsplit("\t", 1)[0] + "\tabc"  # line 11: vp is not a number
    write_forcing_lines(bad, lines)
    run = subprocess.run([sys.executable, "-m", "lsegeo", "ingest", "camels", "--data-dir", str(src), "--out",
                          str(tmp_path / "x.zarr"), "--workers", "1", "--catalog", "", "-q"],
                         capture_output=True, text=True, timeout=300)
    output = run.stdout + run.stderr
    assert run.returncode == 2, output
    assert output.count(bad.name) == 1, output
    assert f"{bad}, line 11: cell 'abc' in column 'vp(Pa)' is not a number" in output
    assert "Traceback" not in output and "Compute Failed" not in output
    assert not (tmp_path / "x.zarr").exists()
