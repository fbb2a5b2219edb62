"""Comparing calibrations (lsegeo.calibration.comparison): bootstrap medians, table and figure, on real stores."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import SMALL_PERIODS, small_job_config

from lsegeo.calibration.comparison import bootstrap_median, comparison_table, final_best_scores, format_comparison
from lsegeo.calibration.direct import calibrate_direct, open_direct
from lsegeo.calibration.store import calibration_history
from lsegeo.config import validate_config
from lsegeo.errors import StoreError
from lsegeo.plots.comparison import plot_comparison
from lsegeo.workflows.calibrate import calibrate_job


def test_bootstrap_median_brackets_the_median_and_ignores_nan():
    rng = np.random.default_rng(0)
    x = rng.normal(0.5, 0.1, 400)
    m, lo, hi = bootstrap_median(np.concatenate([x, [np.nan] * 20]))
    assert m == pytest.approx(np.median(x))
    assert lo < m < hi and hi - lo < 0.05          # about 2 x 1.25 sigma / sqrt(n) wide
    wide = bootstrap_median(x, level=0.99)
    assert wide[1] <= lo and wide[2] >= hi
    assert bootstrap_median(x, seed=1) != bootstrap_median(x, seed=2)
    assert all(np.isnan(v) for v in bootstrap_median([np.nan, np.nan]))
    with pytest.raises(ValueError, match="level"):
        bootstrap_median(x, level=1.5)


@pytest.fixture(scope="module")
def two_methods(small_basins_store, client, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("compare")
    raw = small_job_config(small_basins_store, tmp / "iter0.zarr", n_members=20)
    raw["calibrate"] = {"store": str(tmp / "cal.zarr"), "iterations": 1, "proposals": 5, "pop_size": 16,
                        "generations": 5, "restarts": 1, "cv_folds": 0}
    cal = calibrate_job(validate_config(raw), client=client, progress=False)
    basins = [str(b) for b in calibration_history(cal).basin.values]
    direct = tmp / "dds.zarr"
    calibrate_direct(small_basins_store, basins[:6], budget=60, chains=2, periods=SMALL_PERIODS, warmup_days=365,
                     client=client, store=direct, progress=False, seed=1, checkpoints=[20])
    return cal, direct, tmp


def test_table_compares_the_shared_basins_at_every_budget(two_methods):
    cal, direct, _ = two_methods
    table = comparison_table({"LSE": cal}, {"DDS": direct})
    assert set(table["basins"]) == {6}                       # the DDS store holds 6 of the 9 basins
    lse = table[table.method == "LSE"]
    assert list(lse.iteration) == [0, 1] and list(lse.runs) == [20, 25]
    hist = calibration_history(cal).sel(basin=[str(b) for b in open_direct(direct).basin.values])
    expected = float(np.median(hist["best_score"].sel(iteration=1, period="test").values))
    assert lse.iloc[1]["test_median"] == pytest.approx(expected)
    assert (lse.calibration_low <= lse.calibration_median).all()
    assert (lse.calibration_median <= lse.calibration_high).all()
    dds = table[table.method == "DDS"]
    assert list(dds.runs) == [20, 25, 60] and list(dds.iteration) == [-1, -1, -1]
    # read from the best-so-far history: never worse with more runs; the test score at the full budget only
    assert np.all(np.diff(dds.calibration_median.values) >= 0)
    # and improves by more than the bootstrap noise: measured +0.06 from 20 to 60 runs
    assert dds.calibration_median.values[2] > dds.calibration_median.values[0] + 0.02
    # the emulator loop's 5 proposals raise the median over the 20 Latin-hypercube members (measured +0.055)
    assert lse.calibration_median.values[1] > lse.calibration_median.values[0] + 0.02
    # the test period at the checkpoint (20 runs) and the full budget, unknown at 25 runs
    assert np.isfinite(dds.test_median.values[[0, 2]]).all() and np.isnan(dds.test_median.values[1])
    d = open_direct(direct)
    assert dds.iloc[0]["test_median"] == pytest.approx(
        float(np.median(d["checkpoint_score"].sel(checkpoint=20, period="test").values)))
    text = format_comparison(table)
    assert "| LSE iteration 1 | 25 |" in text and "| DDS | 60 |" in text and "6 basins" in text


def test_figure_and_bad_stores(two_methods):
    cal, direct, tmp = two_methods
    out = plot_comparison(final_best_scores({"LSE": cal}, {"DDS": direct}), tmp / "fig" / "cmp.png")
    assert out.exists() and out.stat().st_size > 10_000
    with pytest.raises(StoreError, match="does not exist"):
        comparison_table({"LSE": tmp / "missing.zarr"})
    with pytest.raises(StoreError, match="not a direct-calibration store"):
        comparison_table({"LSE": cal}, {"DDS": cal})
    with pytest.raises(StoreError, match="optimised 'kgeprime', not 'nse'"):
        comparison_table({}, {"DDS": direct}, objective="nse")


def test_compare_command(two_methods):
    from click.testing import CliRunner

    from lsegeo.cli import main

    cal, direct, tmp = two_methods
    runner = CliRunner()
    res = runner.invoke(main, ["compare", f"LSE={cal}", "--direct", f"DDS={direct}", "--markdown",
                               str(tmp / "cmp.md"), "--csv", str(tmp / "cmp.csv"), "--figure", str(tmp / "cli.png")])
    assert res.exit_code == 0, res.output
    assert "| LSE iteration 1 | 25 |" in res.output and "| DDS | 60 |" in res.output
    assert (tmp / "cmp.md").read_text().startswith("| method |") and (tmp / "cli.png").exists()
    assert len((tmp / "cmp.csv").read_text().splitlines()) == 1 + 2 + 3
    res = runner.invoke(main, ["compare", str(cal)])          # a bare store is labelled by its name
    assert res.exit_code == 0 and "| cal iteration 0 | 20 |" in res.output
    res = runner.invoke(main, ["compare", f"LSE={tmp / 'nope.zarr'}"])
    assert res.exit_code == 2 and "nope.zarr does not exist" in res.output
    res = runner.invoke(main, ["compare"])
    assert res.exit_code == 2 and "at least one" in res.output
