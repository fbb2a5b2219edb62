"""The external-model launch workflow (``lsegeo launch``): an ensemble store's pending members as jobs.

It turns the ``external`` and ``cluster`` sections of a validated :class:`~lsegeo.config.Config`
into the ensemble store's path (:func:`launch_store`), the settings
(:meth:`lsegeo.config.ExternalConfig.settings`, checked by :func:`check_launch_settings`) and a
call of :func:`lsegeo.ensembles.external.run_external_ensemble` on the configured cluster, and
reports what the launch did (:func:`format_launch_report`).

The ensemble store is made beforehand (an ensemble design, the next iteration of a calibration
for HPC, ...) and is the checkpoint: each launch runs only its pending members, so running the
same command again after an interruption, or after more members were appended, runs what is
left and nothing else.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from lsegeo.config import Config
from lsegeo.errors import ConfigError
from lsegeo.models.external_settings import ExternalModelSettings
from lsegeo.workflows.ensemble import ensemble_paths

__all__ = ["launch_store", "check_launch_settings", "launch_job", "format_launch_report"]

logger = logging.getLogger(__name__)


def launch_store(cfg: Config) -> Path:
    """The ensemble store that a launch runs: ``external.store``, else the ``ensemble`` section's store.

    Returns
    -------
    pathlib.Path
        ``external.store``; when unset ``ensemble.store``; when that is unset too
        ``<work dir>/ensemble_<ensemble.model>.zarr`` (:func:`lsegeo.workflows.ensemble.ensemble_paths`).
    """
    return Path(cfg.external.store or ensemble_paths(cfg)[1])


def check_launch_settings(settings: ExternalModelSettings) -> None:
    """Refuse, before anything runs, settings with which every member would fail.

    Raises
    ------
    ConfigError
        No command template (``external.command``); with the default inputs writer, a
        placeholder that no member has (the message lists the known ones); an inputs writer
        that cannot be imported (``external.inputs_writer``).
    """
    from lsegeo.ensembles.external import STATIC_FIELDS
    from lsegeo.models.external import load_writer, template_fields

    if not settings.command:
        raise ConfigError("external.command: no command template; give the argument list that runs one member, "
                          "e.g. ['{python}', '-m', 'mypackage.run', '--member-dir', '{member_dir}'] "
                          "(docs/ctsm.md, the launcher section)")
    if settings.inputs_writer == ExternalModelSettings.inputs_writer:
        known = {*STATIC_FIELDS, "member_file"}
        unknown = template_fields(settings.command) - known
        if unknown:
            raise ConfigError(f"external.command: unknown placeholder(s) {', '.join(sorted(unknown))}; known: "
                              f"{', '.join(sorted(known))} (another inputs writer may add its own)")
    try:
        load_writer(settings.inputs_writer)
    except ValueError as err:
        raise ConfigError(f"external.inputs_writer: {err}") from None


def launch_job(cfg: Config, *, client=None, progress: bool = True, call: str = "") -> tuple[Path, dict[str, Any]]:
    """Run every pending member of the configured ensemble store with the external model.

    Parameters
    ----------
    cfg : Config
        Sections ``external`` and ``cluster`` (and ``ensemble``/``work_dir`` for the default
        store).
    client : distributed.Client, optional
        Run on this client instead of starting the cluster of ``cfg.cluster``.
    progress : bool
        Show a progress bar (members) on standard error.
    call : str
        The command line, for the store's ``history``.

    Returns
    -------
    (pathlib.Path, dict)
        The store and the launcher's statistics
        (:func:`lsegeo.ensembles.external.run_external_ensemble`: ``ran``, ``failed`` in this
        launch, ``failed_total``, ``pending``, ``done``, ``total``, ``reused``, ``launch``, ``wall``).

    Raises
    ------
    ConfigError
        :func:`check_launch_settings`.
    lsegeo.errors.StoreError
        The store is missing or is not an ensemble store.
    """
    from lsegeo.ensembles.external import run_external_ensemble

    settings = cfg.external.settings()
    check_launch_settings(settings)
    store = launch_store(cfg)
    logger.info("launch: pending members of %s, one job each, folders below %s", store, settings.work_root)
    stats = run_external_ensemble(store, settings, client=client, cluster=cfg.cluster.settings(), progress=progress,
                                  call=call)
    return store, stats


def format_launch_report(store: Path, stats: dict[str, Any]) -> str:
    """The lines that ``lsegeo launch`` prints: members run and failed, what is left, the store."""
    reused = f" ({stats['reused']} collected from finished runs of an earlier launch)" if stats.get("reused") else ""
    lines = [
        f"launch              {stats['launch']}",
        f"members run         {stats['ran']}{reused} in {stats['wall']:.1f} s",
        f"failed this launch  {stats['failed']}",
        f"failed in total     {stats['failed_total']} (reasons in the store's status_message)",
        f"pending             {stats['pending']} of {stats['total']}",
        f"store               {store}",
    ]
    return "\n".join(lines)
