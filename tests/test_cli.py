"""The lsegeo command line, run as a user runs it."""

from __future__ import annotations

import subprocess
import sys

import pytest
from click.testing import CliRunner

from lsegeo.cli import main

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
    assert result.exit_code == 1
    assert "unknown gauge id '99999999'" in result.output and "Traceback" not in result.output


def test_bad_config_is_a_clear_error(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("ingest:\n  chunk_basins: many\n")
    result = CliRunner().invoke(main, ["ingest", "camels", "--config", str(cfg)])
    assert result.exit_code == 1 and "ingest.chunk_basins" in result.output


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
