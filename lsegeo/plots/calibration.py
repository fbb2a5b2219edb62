"""Figure of a calibration's progress: CDFs across basins of the best simulated score per iteration."""

from __future__ import annotations

from pathlib import Path

import xarray as xr

from lsegeo.plots.summary import plot_score_cdf

__all__ = ["plot_calibration"]


def plot_calibration(history: xr.Dataset, figure: str | Path, title: str = "") -> Path:
    """CDFs across basins of the best simulated score after each iteration, on every period.

    Parameters
    ----------
    history : xarray.Dataset
        :func:`lsegeo.calibration.store.calibration_history`: ``best_score(iteration, basin,
        period)`` and ``runs(iteration)``, attribute ``objective`` (the score drawn, KGE' by
        default, dimensionless).
    figure : path-like
        Output PNG; its folder is created.
    title : str
        Figure title; default one naming the score.

    Returns
    -------
    pathlib.Path
        The figure.
    """
    curves = {}
    for p in history.period.values:
        for k in history.iteration.values:
            curves[f"{p}, iteration {int(k)} ({int(history.runs.sel(iteration=k))} runs)"] = \
                history["best_score"].sel(iteration=k, period=p).values
    return plot_score_cdf(curves, figure, xlabel=f"best simulated {history.attrs['objective']}",
                          title=title or f"best {history.attrs['objective']} per iteration", xlim=(-0.5, 1.0))
