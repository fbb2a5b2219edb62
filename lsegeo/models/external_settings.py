"""Settings of a model that runs as separate jobs (CTSM through CIME, or any executable).

:class:`ExternalModelSettings` owns the defaults of :mod:`lsegeo.models.external` and of
:func:`lsegeo.ensembles.external.run_external_ensemble`. It imports nothing from the steps, so
it counts as a base module.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["ExternalModelSettings"]


@dataclass(frozen=True)
class ExternalModelSettings:
    """How each member of an external model is prepared, run and collected.

    Attributes
    ----------
    command : tuple of str or str
        The command template: a list of strings with ``{placeholders}``, rendered into an
        argument list and run without a shell (:func:`lsegeo.models.external.render_command`);
        a single string is split with :func:`shlex.split` first (POSIX quoting), never given to
        a shell. Placeholders: ``{member_dir}``, ``{output_dir}``, ``{case}``, ``{basin}``,
        ``{member}``, ``{launch}``, ``{start}``, ``{end}`` (the simulation window, ISO dates),
        ``{basins_store}``, ``{python}`` (this interpreter), ``{member_file}`` and every path the
        inputs writer returns (e.g. ``{paramfile}``, ``{fsurdat}``, ``{user_nl_clm}``).
    work_root : str
        Folder holding one working folder per member, ``<work_root>/<basin>/member_<NNNNN>``.
    timeout_s : float
        Seconds a member's command may run; then it is killed and the member fails.
    log_tail_lines : int
        Last lines of the command's output kept in the store's failure message.
    history_glob : str
        Glob of the member's history files, relative to its folder (CTSM's daily ``h1`` stream).
    runoff_variable : str
        The runoff variable of the history files, a flux in mm/s.
    case_name : str
        Template of the ``{case}`` placeholder (a CIME case name per member).
    inputs_writer : str
        ``"module:function"`` writing a member's inputs into its folder
        (:func:`lsegeo.models.external.write_member_json` by default: the values as JSON).
    writer_options : dict
        Keyword arguments of the inputs writer (e.g. base parameter file and surface dataset).
    """

    command: tuple[str, ...] | str = ()
    work_root: str = "work/external_runs"
    timeout_s: float = 48 * 3600.0
    log_tail_lines: int = 20
    history_glob: str = "output/*.h1.*.nc"
    runoff_variable: str = "QRUNOFF"
    case_name: str = "{basin}_m{member:05d}"
    inputs_writer: str = "lsegeo.models.external:write_member_json"
    writer_options: dict[str, Any] = field(default_factory=dict)
