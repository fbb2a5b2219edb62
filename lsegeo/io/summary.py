"""What a basins store holds, in numbers (its figure is :func:`lsegeo.plots.summary.plot_basins_summary`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lsegeo.io.stores import open_store

__all__ = ["summarize_basins", "format_summary"]


def summarize_basins(store: str | Path) -> dict[str, Any]:
    """Return the key figures of a basins store.

    Parameters
    ----------
    store : path-like
        A basins store of ``lsegeo ingest camels`` (groups ``attributes``, ``forcing``,
        ``observed``).

    Returns
    -------
    dict
        ``store`` (the path as text), ``n_gauges`` (attributes), ``n_attributes``,
        ``n_basins_forcing``, ``n_basins_observed``, ``n_basins_without_observations``,
        ``period`` (first and last day, ISO dates), ``n_days``, ``missing_obs_share`` (share of
        basin-days without an observation over basins that have observations),
        ``missing_obs_share_all`` (over every basin with forcing), ``forcing_variables``, and
        ``ingest_checks``: the ingest report stored with the store (rule counts, basins whose
        area estimates disagree; see :func:`lsegeo.ingest.camels.ingest_report`), ``{}`` for a
        store without one.

    Raises
    ------
    StoreError
        ``store`` is not a zarr v3 store or lacks one of the three groups.
    """
    attrs = open_store(store, "attributes")
    forcing = open_store(store, "forcing")
    observed = open_store(store, "observed")
    n_days = observed.sizes["time"]
    counts = observed["n_observed_days"].values
    has = observed["has_observations"].values
    n_attr = len([v for v in attrs.data_vars if v not in ("has_forcing", "has_observations")]) + \
        len([c for c in attrs.coords if c != "basin"])
    return {
        "store": str(store),
        "n_gauges": int(attrs.sizes["basin"]),
        "n_attributes": n_attr,
        "n_basins_forcing": int(forcing.sizes["basin"]),
        "n_basins_observed": int(has.sum()),
        "n_basins_without_observations": int((~has).sum()),
        "n_gauges_without_observations": int(attrs.sizes["basin"] - has.sum()),
        "period": (str(forcing.time.values[0])[:10], str(forcing.time.values[-1])[:10]),
        "n_days": int(n_days),
        "missing_obs_share": float(1 - counts[has].sum() / (has.sum() * n_days)) if has.any() else float("nan"),
        "missing_obs_share_all": float(1 - counts.sum() / (len(counts) * n_days)),
        "forcing_variables": sorted(v for v in forcing.data_vars
                                    if "basin" in forcing[v].dims and "time" in forcing[v].dims),
        "ingest_checks": json.loads(observed.attrs.get("lsegeo_ingest_checks", "{}")),
    }


def format_summary(s: dict[str, Any]) -> str:
    """Render :func:`summarize_basins` as text for the terminal (one line per figure)."""
    return "\n".join([
        f"basins store        {s['store']}",
        f"gauges (attributes) {s['n_gauges']}, {s['n_attributes']} attributes each",
        f"basins with forcing {s['n_basins_forcing']} ({', '.join(s['forcing_variables'])})",
        f"period              {s['period'][0]} to {s['period'][1]} ({s['n_days']} days)",
        f"observed streamflow {s['n_basins_observed']} basins; {_without(s)}",
        f"missing observations {100 * s['missing_obs_share']:.2f}% of basin-days in basins with observations "
        f"({100 * s['missing_obs_share_all']:.2f}% over all basins with forcing)",
        *_format_checks(s.get("ingest_checks") or {}),
    ])


def _without(s: dict[str, Any]) -> str:
    """The gauges without observed streamflow: those with forcing (all-NaN) and those without forcing."""
    with_forcing = s["n_basins_without_observations"]
    total = s.get("n_gauges_without_observations", with_forcing)
    no_forcing = total - with_forcing
    return (f"{total} gauges without (has_observations=False): {with_forcing} with forcing, streamflow "
            f"withheld or absent (all-NaN)" + (f"; {no_forcing} without forcing" if no_forcing else ""))


#: basins with disagreeing areas printed, the largest differences first
_LISTED = 10


def _format_checks(report: dict[str, Any]) -> list[str]:
    """The ingest report's lines: each rule that masked or repaired values, the disagreeing areas."""
    if not report:
        return []
    rules = report.get("rules", {})
    done = [f"{name} {r['count']} ({r['action']})" for name, r in rules.items() if r.get("count")]
    lines = [f"ingest checks        {'; '.join(done) if done else 'nothing masked or repaired'} "
             f"[{report.get('doc', '')}]"]
    area = report.get("area")
    if area:
        lines.append(f"basin areas          streamflow converted with {area['converts_streamflow']}; "
                     f"{area['n_disagree']} of {area['n_basins']} basins have another estimate more than "
                     f"{100 * area['tolerance']:g}% off (gages2 / forcing file / geospatial fabric, km2):")
        worst = sorted(area["disagree"], key=lambda d: -d["rel_diff"])
        lines += [f"  {d['basin']}  {d['area_gages2_km2']:g} / {d['area_forcing_km2']:g} / "
                  f"{d['area_geospa_fabric_km2']:g}  ({100 * d['rel_diff']:.0f}%)" for d in worst[:_LISTED]]
        if len(worst) > _LISTED:
            lines.append(f"  ... and {len(worst) - _LISTED} more: every basin is in the store's report "
                         "(attribute lsegeo_ingest_checks) and its observed/area_rel_diff")
    return lines
