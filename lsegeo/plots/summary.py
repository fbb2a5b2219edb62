"""Figures of what a store holds: the gauges of a basins store, CDFs of scores across basins.

The numbers of a basins store are :func:`lsegeo.io.summary.summarize_basins`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lsegeo.io.stores import open_store

__all__ = [
    "plot_basins_summary",
    "plot_score_cdf",
    "plot_score_cdf_panels",
    "save_figure",
]


def plot_basins_summary(store: str | Path, path: str | Path) -> Path:
    """Draw the gauges of a basins store and save the figure as PNG.

    Three panels: a map of the gauges coloured by the share of days with observed streamflow
    (crosses: no observations), a map of the mean Daymet precipitation [mm/day], and the CDF
    across basins of the share of days observed.

    Parameters
    ----------
    store : path-like
        A basins store (groups ``observed`` and ``forcing``).
    path : path-like
        Output PNG; its folder is created.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    observed = open_store(store, "observed")
    share = observed["n_observed_days"].values / observed.sizes["time"]
    has = observed["has_observations"].values
    lon, lat = observed["lon"].values, observed["lat"].values
    forcing = open_store(store, "forcing")
    pmean = forcing["prcp"].mean("time").values
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.6), gridspec_kw={"width_ratios": [1.6, 1.6, 1]})
    ax = axes[0]
    sc = ax.scatter(lon[has], lat[has], c=share[has], s=12, cmap="viridis", vmin=0, vmax=1)
    ax.scatter(lon[~has], lat[~has], marker="x", s=14, c="crimson", label=f"no observations ({(~has).sum()})")
    fig.colorbar(sc, ax=ax, label="share of days with observed streamflow")
    ax.set(title="CAMELS-US gauges in the store", xlabel="longitude", ylabel="latitude")
    ax.legend(loc="lower left", fontsize=8)
    ax = axes[1]
    sc = ax.scatter(lon, lat, c=pmean, s=12, cmap="Blues")
    fig.colorbar(sc, ax=ax, label="mean precipitation [mm/day]")
    ax.set(title="Daymet mean precipitation", xlabel="longitude")
    ax = axes[2]
    _cdf(ax, share[has])
    ax.set(title="CDF across basins", xlabel="share of days observed", ylabel="fraction of basins", xlim=(0, 1.01))
    return save_figure(fig, path)


def _cdf(ax, values: np.ndarray, label: str | None = None, colour: str | None = None) -> None:
    """Step plot of the empirical CDF of the finite values; the median joins a given label."""
    x = np.sort(np.asarray(values, dtype=float)[np.isfinite(values)])
    if x.size:
        if label is not None:
            label = f"{label} (median {np.median(x):.3f}, n={x.size})"
        ax.step(x, np.arange(1, x.size + 1) / x.size, where="post", label=label, color=colour)
    ax.grid(alpha=0.3)


def save_figure(fig, path: str | Path) -> Path:
    """Lay out, save as PNG (creating the folder) and close a matplotlib figure; return the path."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_score_cdf(curves: dict[str, np.ndarray], path: str | Path, xlabel: str = "KGE'",
                   title: str = "", xlim: tuple[float, float] = (-1.0, 1.0)) -> Path:
    """Draw the empirical CDFs across basins of one score for several cases; save as PNG.

    Parameters
    ----------
    curves : dict of str to array
        Label -> one score per basin (NaN ignored); the median is added to the label.
    path : path-like
        Output PNG.
    xlabel, title, xlim
        Axis label, figure title and x range.
    """
    return plot_score_cdf_panels({"": curves}, path, xlabel=xlabel, title=title, xlim=xlim)


def plot_score_cdf_panels(panels: dict[str, dict[str, np.ndarray]], path: str | Path, xlabel: str = "KGE'",
                          title: str = "", xlim: tuple[float, float] = (-1.0, 1.0)) -> Path:
    """Several panels of score CDFs side by side, one colour per label across the panels.

    Parameters
    ----------
    panels : dict of str to dict of str to array
        Panel title (e.g. the period) -> label -> one score per basin (NaN ignored).
    path : path-like
        Output PNG.
    xlabel, title, xlim
        Axis label, figure title and x range (shared by the panels).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = max(1, len(panels))
    fig, axes = plt.subplots(1, n, figsize=(6.4 * n, 4.6), squeeze=False, sharey=True)
    labels = list(dict.fromkeys(label for curves in panels.values() for label in curves))
    colours = {label: f"C{i % 10}" for i, label in enumerate(labels)}
    for ax, (name, curves) in zip(axes[0], panels.items(), strict=False):
        for label, values in curves.items():
            _cdf(ax, values, label, colour=colours[label])
        ax.set(xlabel=xlabel, xlim=xlim, ylim=(0, 1), title=name)
        ax.legend(loc="upper left", fontsize=8)
    axes[0, 0].set_ylabel("fraction of basins (CDF)")
    if title:
        fig.suptitle(title)
    return save_figure(fig, path)
