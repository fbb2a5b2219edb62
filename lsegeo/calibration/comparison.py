"""Comparing calibrations of the same basins: emulator loops against each other and against DDS.

The question a user of the emulator loop asks is how good its calibrated parameters are for the
model runs it spent, next to another emulator (LSE against SSE) and next to calibrating each basin
directly with a standard optimiser. This module answers it from the stores those runs leave:

* :func:`bootstrap_median`: the median over basins with a percentile-bootstrap interval;
* :func:`comparison_table`: per method and budget (model runs per basin), the median best score
  on the calibration and the test period with bootstrap intervals, on the basins that all the
  compared stores share;
* :func:`format_comparison`: that table in Markdown;
* :func:`final_best_scores`: each method's final best score per basin and period, which
  :func:`lsegeo.plots.comparison.plot_comparison` draws as CDFs across basins.

The best member of a basin is always chosen on the calibration period; the test period is never
used for choosing, so its scores measure how well the calibrated parameters transfer in time.
``lsegeo compare`` is the command-line face of these functions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from lsegeo.errors import StoreError

__all__ = ["bootstrap_median", "comparison_table", "format_comparison", "final_best_scores"]


def bootstrap_median(values, n_resamples: int = 2000, seed: int = 0, level: float = 0.95) -> tuple[float, float, float]:
    """The median of the finite values and its percentile-bootstrap interval.

    Parameters
    ----------
    values : array_like
        One value per basin; NaN (a basin without a score) is left out.
    n_resamples : int
        Bootstrap resamples of the basins (with replacement).
    seed : int
        Seed of the resampling.
    level : float
        Coverage of the interval, in (0, 1).

    Returns
    -------
    (float, float, float)
        Median, lower and upper bound; all NaN when no value is finite.
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    x = np.asarray(values, dtype=float).ravel()
    x = x[np.isfinite(x)]
    if x.size == 0:
        return (np.nan, np.nan, np.nan)
    rng = np.random.default_rng(seed)
    meds = np.median(rng.choice(x, size=(n_resamples, x.size), replace=True), axis=1)
    tail = 100.0 * (1.0 - level) / 2.0
    return float(np.median(x)), float(np.percentile(meds, tail)), float(np.percentile(meds, 100.0 - tail))


def _calibration_curves(path: Path, objective: str):
    from lsegeo.calibration.store import calibration_history

    if not Path(path).exists():
        raise StoreError(f"calibration store {path} does not exist")
    return calibration_history(Path(path), objective=objective)


def comparison_table(calibrations: Mapping[str, str | Path], direct: Mapping[str, str | Path] | None = None, *,
                     objective: str = "kgeprime", direct_runs: Sequence[int] | None = None,
                     n_resamples: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Median best score per method and budget, with bootstrap intervals, on shared basins.

    Parameters
    ----------
    calibrations : mapping of str to path
        Label -> calibration store of ``lsegeo calibrate`` (one row per iteration).
    direct : mapping of str to path, optional
        Label -> direct-calibration store of :func:`lsegeo.calibration.direct.calibrate_direct`. Its
        best-so-far history gives the calibration-period median at each budget of
        ``direct_runs``; the test period is known for its final best set and at the store's
        checkpoints (``calibrate_direct(checkpoints=...)``).
    objective : str
        The score reported (the calibration stores' best member is chosen on it; a direct
        store reports the objective it optimised).
    direct_runs : sequence of int, optional
        Budgets at which to read the direct searches; default the budgets of the calibrations'
        iterations, 1,000 and the full budget.
    n_resamples, seed
        Of :func:`bootstrap_median`.

    Returns
    -------
    pandas.DataFrame
        One row per (method, budget): ``method``, ``iteration`` (-1 for direct rows), ``runs``,
        ``basins``, and ``median`` / ``low`` / ``high`` for ``calibration`` and ``test``
        (NaN where unknown). Only basins present in every store are used, so the medians
        compare the same basins.

    Raises
    ------
    StoreError
        When a store does not exist, is of the wrong kind, or the stores share no basin.
    """
    from lsegeo.calibration.direct import open_direct

    hists = {label: _calibration_curves(Path(p), objective) for label, p in calibrations.items()}
    directs = {label: open_direct(p) for label, p in (direct or {}).items()}
    for label, d in directs.items():
        made_for = d.attrs.get("lsegeo_objective", objective)
        if made_for != objective:
            raise StoreError(f"direct store {direct[label]} optimised {made_for!r}, not {objective!r}")
    sets = [set(map(str, h.basin.values)) for h in hists.values()] + \
           [set(map(str, d.basin.values)) for d in directs.values()]
    if not sets:
        raise ValueError("nothing to compare: give at least one calibration or direct store")
    shared = sorted(set.intersection(*sets))
    if not shared:
        raise StoreError("the stores compared share no basin")
    rows = []

    def row(method: str, iteration: int, runs: int, cal, test) -> None:
        c = bootstrap_median(cal, n_resamples, seed)
        t = bootstrap_median(test, n_resamples, seed) if test is not None else (np.nan,) * 3
        rows.append({"method": method, "iteration": iteration, "runs": runs, "basins": len(shared),
                     "calibration_median": c[0], "calibration_low": c[1], "calibration_high": c[2],
                     "test_median": t[0], "test_low": t[1], "test_high": t[2]})

    budgets: set[int] = set()
    for label, h in hists.items():
        h = h.sel(basin=shared)
        for k in h.iteration.values:
            runs = int(h.runs.sel(iteration=k))
            budgets.add(runs)
            best = h["best_score"].sel(iteration=k)
            row(label, int(k), runs, best.sel(period="calibration").values,
                best.sel(period="test").values if "test" in best.period else None)
    for label, d in directs.items():
        d = d.sel(basin=shared)
        full = int(d.sizes["run"])
        wanted = sorted({r for r in (direct_runs or sorted(budgets | {1000})) if 1 <= r <= full} | {full})
        history = d["history"].values
        final = d["best_score"].load()
        checked = d["checkpoint_score"].load() if "checkpoint_score" in d else None
        for r in wanted:
            test = None
            if "test" in final.period:
                if r == full:
                    test = final.sel(period="test").values
                elif checked is not None and r in checked.checkpoint.values:
                    test = checked.sel(checkpoint=r, period="test").values
            row(label, -1, r, history[:, r - 1], test)
    return pd.DataFrame(rows)


def _fmt(m: float, lo: float, hi: float) -> str:
    return "" if not np.isfinite(m) else f"{m:.3f} [{lo:.3f}, {hi:.3f}]"


def format_comparison(table: pd.DataFrame, objective: str = "KGE'") -> str:
    """The table of :func:`comparison_table` in Markdown, one line per method and budget."""
    header = (f"| method | runs per basin | median best {objective} calibration [95% CI] | "
              f"median best {objective} test [95% CI] |")
    lines = [header, "|---|---|---|---|"]
    for r in table.itertuples():
        what = r.method if r.iteration < 0 else f"{r.method} iteration {r.iteration}"
        lines.append(f"| {what} | {r.runs} | {_fmt(r.calibration_median, r.calibration_low, r.calibration_high)} | "
                     f"{_fmt(r.test_median, r.test_low, r.test_high)} |")
    return "\n".join(lines) + f"\n\n{int(table['basins'].iloc[0])} basins; medians over basins with " \
                              "percentile-bootstrap 95% intervals; the best member is chosen on the calibration period."


def final_best_scores(calibrations: Mapping[str, str | Path], direct: Mapping[str, str | Path] | None = None, *,
                      objective: str = "kgeprime") -> dict[str, dict[str, np.ndarray]]:
    """Each method's final best score per basin, on the calibration and the test period.

    Parameters
    ----------
    calibrations, direct
        As for :func:`comparison_table`.
    objective : str
        The score (a direct store reports the one it optimised).

    Returns
    -------
    dict
        ``{"calibration period": {label: scores}, "test period": {...}}``, one score per basin
        of the store (NaN for a basin without one); labels name the method and its runs per
        basin. A period the stores do not have is left empty. This is what
        :func:`lsegeo.plots.comparison.plot_comparison` draws.

    Raises
    ------
    StoreError
        When a store does not exist or is of the wrong kind.
    """
    from lsegeo.calibration.direct import open_direct

    panels: dict[str, dict[str, np.ndarray]] = {"calibration period": {}, "test period": {}}
    for label, p in calibrations.items():
        h = _calibration_curves(Path(p), objective)
        last = h.iteration.values[-1]
        for period in ("calibration", "test"):
            if period in h.period:
                panels[f"{period} period"][f"{label}, {int(h.runs.sel(iteration=last))} runs"] = \
                    h["best_score"].sel(iteration=last, period=period).values
    for label, p in (direct or {}).items():
        d = open_direct(p)
        for period in ("calibration", "test"):
            if period in d.period:
                panels[f"{period} period"][f"{label}, {int(d.sizes['run'])} runs"] = \
                    d["best_score"].sel(period=period).values
    return panels
