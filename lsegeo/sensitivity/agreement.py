"""Agreement of two sets of first-order indices, per basin (the emulator's against the ensemble's).

:func:`compare_indices` measures, per basin, whether two estimates of ``S1`` rank the
parameters alike (Spearman correlation) and name the same most influential parameters (overlap
of the top sets); :func:`format_agreement` prints it. Screening keeps the few parameters at the
top, so the top-set measures are the ones that matter for it.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from lsegeo.conventions import BASIN, PARAM
from lsegeo.sensitivity.indices import as_indices, str_coord
from lsegeo.sensitivity.settings import SensitivitySettings

__all__ = ["compare_indices", "format_agreement"]

_DEFAULTS = SensitivitySettings()


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import spearmanr

    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3 or np.ptp(a[ok]) == 0 or np.ptp(b[ok]) == 0:
        return float("nan")
    return float(spearmanr(a[ok], b[ok]).statistic)


def _top(v: np.ndarray, k: int) -> set[int]:
    v = np.where(np.isfinite(v), v, -np.inf)
    return set(np.argsort(-v, kind="stable")[:k].tolist())


def compare_indices(emulator_S1: xr.Dataset | xr.DataArray, ensemble_S1: xr.Dataset | xr.DataArray,
                    top: int = _DEFAULTS.top) -> xr.Dataset:
    """Agreement, per basin, of two sets of first-order indices (emulator vs ensemble).

    Parameters
    ----------
    emulator_S1, ensemble_S1 : xarray.Dataset or xarray.DataArray
        ``S1(basin, param)`` (a Dataset's ``S1``), e.g. from
        :func:`~lsegeo.sensitivity.sobol.sobol_on_emulator` and
        :func:`~lsegeo.sensitivity.ensemble.sensitivity_from_ensemble`. They are compared on
        their common basins and parameters.
    top : int
        Size of the sets of top parameters compared.

    Returns
    -------
    xarray.Dataset
        Over ``basin``: ``spearman`` (rank correlation of the parameters' indices, over the
        parameters finite in both), ``top_overlap`` (share of the ``top`` parameters of the
        emulator that are also among the ensemble's ``top``), ``top1_agree`` (the most sensitive
        parameter is the same), ``top_emulator`` and ``top_ensemble`` (the top parameters,
        comma-separated). Attributes hold the medians over basins.

    Raises
    ------
    ValueError
        The two sets share no basin or no parameter.
    """
    a = str_coord(str_coord(as_indices(emulator_S1), PARAM), BASIN)
    b = str_coord(str_coord(as_indices(ensemble_S1), PARAM), BASIN)
    params = [p for p in a["param"].values if p in set(b["param"].values)]
    basins = [x for x in a["basin"].values if x in set(b["basin"].values)]
    if not params or not basins:
        raise ValueError("the two sets of indices share no basin or no parameter")
    k = max(1, min(int(top), len(params)))
    va = a.sel(basin=basins, param=params).transpose("basin", "param").values
    vb = b.sel(basin=basins, param=params).transpose("basin", "param").values
    rho = np.array([_spearman(x, y) for x, y in zip(va, vb, strict=True)])
    ta = [_top(x, k) for x in va]
    tb = [_top(y, k) for y in vb]
    overlap = np.array([len(x & y) / k for x, y in zip(ta, tb, strict=True)])
    top1 = np.array([_top(x, 1) == _top(y, 1) for x, y in zip(va, vb, strict=True)])
    valid = np.isfinite(va).any(axis=1) & np.isfinite(vb).any(axis=1)
    overlap = np.where(valid, overlap, np.nan)

    def names_of(v: np.ndarray) -> str:
        order = np.argsort(-np.where(np.isfinite(v), v, -np.inf), kind="stable")[:k]
        return ",".join(params[j] for j in order)

    return xr.Dataset(
        {"spearman": ("basin", rho, {"long_name": "Spearman rank correlation of the parameters' S1"}),
         "top_overlap": ("basin", overlap, {"long_name": f"share of the top {k} parameters in common"}),
         "top1_agree": ("basin", top1 & valid, {"long_name": "same most sensitive parameter"}),
         "top_emulator": ("basin", np.array([names_of(v) for v in va], dtype=object)),
         "top_ensemble": ("basin", np.array([names_of(v) for v in vb], dtype=object))},
        coords={"basin": np.array(basins, dtype=object)},
        attrs={"top": k, "median_spearman": float(np.nanmedian(rho)) if np.isfinite(rho).any() else float("nan"),
               "median_top_overlap": float(np.nanmedian(overlap)) if np.isfinite(overlap).any() else float("nan"),
               "share_top1_agree": float(top1[valid].mean()) if valid.any() else float("nan"),
               "n_params": len(params)},
    )



def format_agreement(cmp: xr.Dataset, per_basin: bool = True) -> list[str]:
    """Printable lines of an agreement per basin.

    The agreement is the result of :func:`compare_indices` or of
    :func:`lsegeo.sensitivity.ensemble.check_against_ensemble`.

    Parameters
    ----------
    cmp : xarray.Dataset
        Agreement per basin.
    per_basin : bool
        One line per basin before the summary line.

    Returns
    -------
    list of str
    """
    k = int(cmp.attrs["top"])
    lines = []
    if per_basin:
        lines.append(f"  {'basin':8s}  {'Spearman':>8s}  {f'top-{k}':>6s}  top-1  top {k} on the emulator / "
                     "from the ensemble")
        for b in cmp["basin"].values:
            r = cmp.sel(basin=b)
            ov = float(r["top_overlap"])
            lines.append(f"  {b!s:8s}  {float(r['spearman']):8.2f}  "
                         f"{(f'{round(ov * k)}/{k}' if np.isfinite(ov) else 'n/a'):>6s}  "
                         f"{'same ' if bool(r['top1_agree']) else 'other'}  {r['top_emulator'].item()} / "
                         f"{r['top_ensemble'].item()}")
    lines.append(f"agreement over {cmp.sizes['basin']} basins ({cmp.attrs['n_params']} parameters): median "
                 f"Spearman {cmp.attrs['median_spearman']:.2f}, median top-{k} overlap "
                 f"{cmp.attrs['median_top_overlap']:.2f}, same most influential parameter in "
                 f"{cmp.attrs['share_top1_agree']:.0%} of the basins")
    return lines
