"""Members of a model that runs as separate jobs: working folders, command templates, runs, logs.

CTSM runs through CIME on an HPC system, never inside a dask worker; lsegeo owns what is around
it. For each (basin, member) this module

1. prepares the member's own working folder, ``<work_root>/<basin>/member_<NNNNN>/``
   (:func:`member_folder`, :func:`prepare_member`), idempotently: the inputs are (re)written by
   an *inputs writer* (:func:`write_member_json` by default; the CTSM writer of parameter file,
   surface dataset and ``user_nl_clm`` plugs in the same way) and the output folder is emptied;
   a member whose command already finished with exit status 0 *for the same inputs* keeps its
   folder and is not run again (its output is collected), so a launch killed after the command
   but before the result was stored costs no second run;
2. renders the command template into an argument list (:func:`render_command`) and runs it
   with :mod:`subprocess` **without a shell** (:func:`run_command`), stdout and stderr into
   ``lsegeo_command.log`` in the folder, with a timeout;
3. records the exit status, the duration and the inputs' digest in ``lsegeo_run.json``
   (:func:`write_run_record`), and keeps the last lines of the log for the ensemble store.

Folder layout::

    <work_root>/<basin>/member_00003/
        lsegeo_member.json     the member's values (basin, member, parameters)  [inputs writer]
        ...                    other inputs of the writer (paramfile, surfdata, user_nl_clm)
        output/                where the command writes, e.g. <case>.clm2.h1.2005-01-01-00000.nc
        lsegeo_command.log     the command's stdout and stderr
        lsegeo_run.json        argv, exit status, seconds, inputs digest (after the command ended)

Running the members on dask, reading their history files and scoring them is
:mod:`lsegeo.ensembles.external`.
"""

from __future__ import annotations

import importlib
import inspect
import json
import logging
import os
import shlex
import shutil
import string
import subprocess
import time as _time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from lsegeo import provenance

__all__ = ["MEMBER_FILE", "RUN_RECORD", "LOG_FILE", "OUTPUT_DIR", "CommandResult", "split_template",
           "template_fields", "render_command", "member_folder", "write_member_json", "load_writer",
           "prepare_member", "run_command", "write_run_record", "read_run_record", "log_tail"]

logger = logging.getLogger(__name__)

#: the member's values as JSON, written by :func:`write_member_json`
MEMBER_FILE = "lsegeo_member.json"
#: the record of a finished command
RUN_RECORD = "lsegeo_run.json"
#: the command's stdout and stderr
LOG_FILE = "lsegeo_command.log"
#: the sub-folder the command writes its output into
OUTPUT_DIR = "output"

InputsWriter = Callable[..., Mapping[str, str]]


@dataclass(frozen=True)
class CommandResult:
    """How a member's command ended.

    Attributes
    ----------
    argv : tuple of str
        The argument list that was run.
    returncode : int
        Exit status; 127 when the executable was not found, 126 when it could not be run, -9
        when it was killed at the timeout.
    seconds : float
        Wall time.
    timed_out : bool
        Killed at the timeout.
    log : str
        Path of the log file.
    tail : tuple of str
        Last lines of the log.
    """

    argv: tuple[str, ...]
    returncode: int
    seconds: float
    timed_out: bool
    log: str
    tail: tuple[str, ...]

    @property
    def ok(self) -> bool:
        """Exit status 0 and not timed out."""
        return self.returncode == 0 and not self.timed_out


def split_template(template: str | Sequence[str]) -> list[str]:
    """A command template as a list of argument templates (a string is split with :func:`shlex.split`).

    Raises
    ------
    ValueError
        An empty template, or a string with unbalanced quotes.
    """
    parts = shlex.split(template) if isinstance(template, str) else [str(a) for a in template]
    if not parts:
        raise ValueError("the external model's command template is empty; set e.g. "
                         "['{python}', '-m', 'mypackage.run', '--member-dir', '{member_dir}']")
    return parts


def template_fields(template: str | Sequence[str]) -> set[str]:
    """The placeholder names used in a command template."""
    names = set()
    for arg in split_template(template):
        for _, name, _, _ in string.Formatter().parse(arg):
            if name:
                names.add(name.split(".")[0].split("[")[0])
    return names


def render_command(template: str | Sequence[str], fields: Mapping[str, Any]) -> list[str]:
    """Render a command template into an argument list.

    Parameters
    ----------
    template : str or sequence of str
        Argument templates with ``{placeholders}`` (``str.format`` syntax, e.g. ``{member:05d}``);
        one string is split with :func:`shlex.split` *before* rendering, so a placeholder's
        value (a path with spaces, say) stays one argument and is never parsed by a shell.
    fields : mapping
        Placeholder values.

    Returns
    -------
    list of str
        The argument list (``argv[0]`` the executable).

    Raises
    ------
    ValueError
        An empty template, or a placeholder that ``fields`` does not have (the message lists
        the known ones).
    """
    unknown = sorted(template_fields(template) - set(fields))
    if unknown:
        raise ValueError(f"unknown placeholder(s) {', '.join('{' + u + '}' for u in unknown)} in the command "
                         f"template; known: {', '.join('{' + k + '}' for k in sorted(fields))}")
    return [arg.format_map(dict(fields)) for arg in split_template(template)]


def member_folder(root: str | os.PathLike, basin: str, member: int) -> Path:
    """The working folder of one (basin, member): ``<root>/<basin>/member_<NNNNN>``."""
    return Path(root) / str(basin) / f"member_{int(member):05d}"


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_member_json(folder: str | os.PathLike, *, basin: str, member: int, values: Mapping[str, float],
                      **options: Any) -> dict[str, str]:
    """The default inputs writer: the member's values as ``lsegeo_member.json``.

    Parameters
    ----------
    folder : path-like
        The member's folder (exists).
    basin : str
        Gauge id.
    member : int
        Member index.
    values : mapping of str to float
        Parameter name -> value.
    **options
        Written too, under ``"options"`` (e.g. what the model needs besides the values).

    Returns
    -------
    dict
        ``{"member_file": path}``, a placeholder of the command template.
    """
    path = Path(folder) / MEMBER_FILE
    record = {"basin": str(basin), "member": int(member), "parameters": {k: float(v) for k, v in values.items()},
              "options": {k: (str(v) if isinstance(v, os.PathLike) else v) for k, v in options.items()}}
    _write_atomic(path, json.dumps(record, indent=1, sort_keys=True))
    return {"member_file": str(path)}


def load_writer(spec: str | InputsWriter) -> InputsWriter:
    """The inputs writer named ``"module:function"`` (or the callable itself).

    Raises
    ------
    ValueError
        ``spec`` is not ``"module:function"``, or the function does not exist.
    """
    if callable(spec):
        return spec
    module, _, attr = str(spec).partition(":")
    if not module or not attr:
        raise ValueError(f"inputs writer {spec!r} must be 'module:function'")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as err:
        raise ValueError(f"inputs writer {spec!r} cannot be loaded: {err}") from err


def _inputs_digest(basin: str, member: int, values: Mapping[str, float], options: Mapping[str, Any],
                   argv_template: Sequence[str]) -> str:
    return provenance.sha256_json({"basin": str(basin), "member": int(member),
                                   "values": {k: float(v) for k, v in values.items()},
                                   "options": {k: str(v) for k, v in options.items()},
                                   "command": list(argv_template)})


def prepare_member(folder: str | os.PathLike, *, basin: str, member: int, values: Mapping[str, float],
                   writer: str | InputsWriter = write_member_json, writer_options: Mapping[str, Any] | None = None,
                   command: str | Sequence[str] = (), bounds: Mapping[str, Sequence[float]] | None = None
                   ) -> tuple[dict[str, str], str, bool]:
    """Prepare a member's folder (idempotent), or find that its command already ran for these inputs.

    Parameters
    ----------
    folder : path-like
        The member's folder (created with its parents).
    basin, member, values :
        What the inputs writer writes.
    writer : str or callable
        The inputs writer (:func:`load_writer`), called as
        ``writer(folder, basin=..., member=..., values=..., **writer_options)`` and returning
        placeholder -> path of what it wrote.
    writer_options : mapping, optional
        Its keyword arguments.
    command : str or sequence of str
        The command template, part of the inputs' identity (a new command reruns the member).
    bounds : mapping of str to (float, float), optional
        The ensemble store's parameter bounds, passed as ``bounds=`` to a writer whose signature
        has that keyword (e.g. :func:`lsegeo.models.ctsm.launch.write_case_inputs`), so that it
        checks the values against the store's space rather than its own defaults.

    Returns
    -------
    (dict, str, bool)
        The writer's paths, the inputs' digest, and whether the folder holds a finished run
        (exit status 0) of the same inputs, whose output can be collected without running again.
    """
    folder = Path(folder)
    options = dict(writer_options or {})
    digest = _inputs_digest(basin, member, values, options, split_template(command) if command else [])
    record = read_run_record(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if record and record.get("inputs_sha256") == digest and record.get("returncode") == 0 \
            and record.get("paths") is not None:
        return dict(record["paths"]), digest, True
    (folder / RUN_RECORD).unlink(missing_ok=True)
    out = folder / OUTPUT_DIR
    if out.exists():
        shutil.rmtree(out)
    out.mkdir()
    write = load_writer(writer)
    if bounds is not None and "bounds" not in options and "bounds" in inspect.signature(write).parameters:
        options["bounds"] = {k: (float(lo), float(hi)) for k, (lo, hi) in bounds.items()}
    paths = write(folder, basin=basin, member=member, values=values, **options)
    return {k: str(v) for k, v in dict(paths).items()}, digest, False


def log_tail(path: str | os.PathLike, n: int) -> tuple[str, ...]:
    """The last ``n`` lines of a text file (empty when it does not exist), each at most 300 characters."""
    p = Path(path)
    if not p.exists() or n <= 0:
        return ()
    with open(p, "rb") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(max(0, size - 64 * 1024))
        lines = f.read().decode("utf-8", errors="replace").splitlines()
    return tuple(line[:300] for line in lines[-n:])


def run_command(argv: Sequence[str], cwd: str | os.PathLike, *, timeout_s: float, tail_lines: int = 20,
                env: Mapping[str, str] | None = None) -> CommandResult:
    """Run an argument list in ``cwd`` without a shell; stdout and stderr go to ``cwd/lsegeo_command.log``.

    Parameters
    ----------
    argv : sequence of str
        The command (e.g. from :func:`render_command`).
    cwd : path-like
        Working folder (the member's folder).
    timeout_s : float
        After this many seconds the process is killed and the result says ``timed_out``.
    tail_lines : int
        Lines of the log kept in the result.
    env : mapping, optional
        Extra environment variables.

    Returns
    -------
    CommandResult
        Never raises for a failing command: a missing executable is exit status 127, one that
        cannot be executed 126.
    """
    argv = [str(a) for a in argv]
    log = Path(cwd) / LOG_FILE
    t0 = _time.perf_counter()
    timed_out = False
    with open(log, "wb") as out:
        out.write(f"$ {shlex.join(argv)}\n".encode())
        out.flush()
        try:
            proc = subprocess.Popen(argv, cwd=str(cwd), stdout=out, stderr=subprocess.STDOUT, shell=False,
                                    stdin=subprocess.DEVNULL, env={**os.environ, **dict(env or {})})
        except FileNotFoundError as err:
            out.write(f"lsegeo: executable not found: {err}\n".encode())
            code = 127
        except PermissionError as err:
            out.write(f"lsegeo: cannot execute: {err}\n".encode())
            code = 126
        else:
            try:
                code = proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                _kill_tree(proc.pid)  # a script's children too (bash -c '... case.submit')
                proc.wait()
                timed_out, code = True, -9
                out.write(f"lsegeo: killed after the timeout of {timeout_s:g} s\n".encode())
    return CommandResult(tuple(argv), int(code), _time.perf_counter() - t0, timed_out, str(log),
                         log_tail(log, tail_lines))


def _kill_tree(pid: int) -> None:
    """Kill a process and every process below it (children first found, then the process)."""
    import psutil

    try:
        root = psutil.Process(pid)
        below = root.children(recursive=True)
    except psutil.NoSuchProcess:
        return
    for p in [*below, root]:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass


def write_run_record(folder: str | os.PathLike, result: CommandResult, digest: str, paths: Mapping[str, str]) -> Path:
    """Record a finished command in ``lsegeo_run.json`` (atomically)."""
    path = Path(folder) / RUN_RECORD
    record = {**asdict(result), "inputs_sha256": digest, "paths": dict(paths),
              "finished": _time.strftime("%Y-%m-%dT%H:%M:%S")}
    _write_atomic(path, json.dumps(record, indent=1))
    return path


def read_run_record(folder: str | os.PathLike) -> dict[str, Any] | None:
    """The run record of a member's folder, or None (no record, or an unreadable one)."""
    path = Path(folder) / RUN_RECORD
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
