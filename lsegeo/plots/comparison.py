"""Figure of calibrations compared: CDFs across basins of each method's final best score, per period."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lsegeo.plots.summary import plot_score_cdf_panels

__all__ = ["plot_comparison"]


def plot_comparison(panels: dict[str, dict[str, np.ndarray]], path: str | Path, *, objective: str = "kgeprime",
                    title: str | None = None) -> Path:
    """CDFs across basins of each method's final best score, one panel per period.

    Parameters
    ----------
    panels : dict
        ``{panel title: {label: one score per basin}}``, as
        :func:`lsegeo.calibration.comparison.final_best_scores` gives them (NaN ignored).
    path : path-like
        The PNG to write; its folder is created.
    objective : str
        The score shown (dimensionless: KGE', NSE, ...).
    title : str, optional
        Figure title.

    Returns
    -------
    pathlib.Path
        The figure written.
    """
    return plot_score_cdf_panels(panels, path, xlabel=f"best simulated {objective}",
                                 title=title or "Calibrations compared: best score per basin", xlim=(-0.5, 1.0))
