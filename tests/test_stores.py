"""Stores on disk: a path is not an identity (item 4), damaged stores are reported or rerun (item 5).

Real zarr stores in tmp folders, real processes and threads; nothing of lsegeo is mocked.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from lsegeo import provenance
from lsegeo.ensembles.runner import run_ensemble
from lsegeo.ensembles.store import DONE, GROUP, open_ensemble, recheck_results
from lsegeo.errors import StoreError
from lsegeo.io.groups import StoreGroup
from lsegeo.io.stores import (
    BUILDER_MARKER,
    atomic_store,
    is_lsegeo_store,
    open_store,
    sidecar_path,
    stamp_provenance,
    store_id,
    write_store,
)
from lsegeo.testing.ensembles import local_client

REPO = Path(__file__).resolve().parents[1]


def _dataset(value: float) -> xr.Dataset:
    return xr.Dataset({"v": (("x",), np.full(4, value))}, coords={"x": np.arange(4)})


def _attrs(value: float) -> dict:
    return provenance.product_attrs(title=f"test store {value}", summary="a test store", step="test",
                                    call="tests/test_stores.py", extra={"lsegeo_store_kind": "test"})


def _write(path: Path, value: float, overwrite: bool = False) -> Path:
    return write_store(_dataset(value), path, group="g", attrs=_attrs(value), inputs={}, overwrite=overwrite)


def _leftovers(target: Path) -> list[str]:
    return sorted(p.name for p in target.parent.glob(f".{target.name}.*"))


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# --- item 4: a path is not an identity -------------------------------------------------------

def test_two_builders_of_one_target_second_fails_first_intact(tmp_path):
    """Both pass the up-front check and build; the later rename fails, the first store stays."""
    target = tmp_path / "same.zarr"
    built = {k: threading.Event() for k in "ab"}
    release = {k: threading.Event() for k in "ab"}
    errors: dict[str, BaseException] = {}

    def job(k: str, value: float) -> None:
        try:
            with atomic_store(target) as tmp:
                _dataset(value).to_zarr(tmp, group="g", zarr_format=3, consolidated=False)
                stamp_provenance(tmp, _attrs(value), {}, str(target))
                built[k].set()
                release[k].wait(30)
        except BaseException as err:  # noqa: B036 - recorded for the assertions
            errors[k] = err
            built[k].set()

    a = threading.Thread(target=job, args=("a", 1.0))
    a.start()
    assert built["a"].wait(30)
    b = threading.Thread(target=job, args=("b", 2.0))
    b.start()
    assert built["b"].wait(30)
    assert "b" not in errors  # the second job did start: no store was at the target yet
    release["a"].set()
    a.join(30)
    first_id = store_id(target)
    release["b"].set()
    b.join(30)
    assert "a" not in errors
    assert isinstance(errors["b"], StoreError)
    assert str(target) in str(errors["b"]) and "created by another job" in str(errors["b"])
    np.testing.assert_array_equal(open_store(target, "g")["v"].values, np.full(4, 1.0))  # the first job's data
    assert store_id(target) == first_id
    assert json.loads(sidecar_path(target).read_text())  # the first job's record, untouched
    assert _leftovers(target) == []


_BUILD = """
import sys, time
import numpy as np, xarray as xr
from lsegeo import provenance
from lsegeo.io.stores import write_store
value = float(sys.argv[2])
ds = xr.Dataset({"v": (("x",), np.full(4, value))})
attrs = provenance.product_attrs(title="p", summary="p", step="test", call="p")
try:
    write_store(ds, sys.argv[1], group="g", attrs=attrs, inputs={})
except Exception as err:
    print(type(err).__name__, err)
    sys.exit(3)
"""


def test_two_processes_without_overwrite_one_store_wins(tmp_path):
    """Two processes started together on one target: exactly one succeeds, the store is its own."""
    target = tmp_path / "same.zarr"
    procs = [subprocess.Popen([sys.executable, "-c", _BUILD, str(target), str(v)], cwd=REPO,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for v in (1.0, 2.0)]
    outs = [p.communicate(timeout=120)[0] for p in procs]
    codes = [p.returncode for p in procs]
    assert sorted(codes) == [0, 3], outs
    loser = codes.index(3)
    assert "StoreError" in outs[loser] and str(target) in outs[loser]
    winner_value = (1.0, 2.0)[1 - loser]
    np.testing.assert_array_equal(open_store(target, "g")["v"].values, np.full(4, winner_value))
    assert _leftovers(target) == []


def test_overwrite_refuses_a_plain_directory_and_keeps_its_files(tmp_path):
    mine = tmp_path / "results"
    (mine / "sub").mkdir(parents=True)
    (mine / "notes.txt").write_text("my thesis")
    (mine / "sub" / "table.csv").write_text("a,b\n1,2\n")
    before = _files(mine)
    with pytest.raises(StoreError, match="not a store written by lsegeo") as err:
        _write(mine, 1.0, overwrite=True)
    assert str(mine) in str(err.value) and "notes.txt" in str(err.value)
    assert _files(mine) == before
    assert _leftovers(mine) == []


def test_overwrite_refuses_foreign_zarr_and_foreign_files_in_a_store(tmp_path):
    foreign = tmp_path / "theirs.zarr"  # a zarr store that lsegeo did not write
    _dataset(5.0).to_zarr(foreign, group="g", zarr_format=3, consolidated=False)
    before = _files(foreign)
    assert not is_lsegeo_store(foreign)
    with pytest.raises(StoreError, match="not a store written by lsegeo"):
        _write(foreign, 1.0, overwrite=True)
    assert _files(foreign) == before
    ours = _write(tmp_path / "ours.zarr", 1.0)
    (ours / "my_notes.txt").write_text("keep me")
    with pytest.raises(StoreError, match="my_notes.txt"):
        _write(ours, 2.0, overwrite=True)
    assert (ours / "my_notes.txt").read_text() == "keep me"
    np.testing.assert_array_equal(open_store(ours, "g")["v"].values, np.full(4, 1.0))


def test_overwrite_replaces_an_lsegeo_store_or_an_empty_folder(tmp_path):
    target = _write(tmp_path / "s.zarr", 1.0)
    old_id = store_id(target)
    assert is_lsegeo_store(target)
    _write(target, 2.0, overwrite=True)
    assert store_id(target) != old_id
    np.testing.assert_array_equal(open_store(target, "g")["v"].values, np.full(4, 2.0))
    empty = tmp_path / "empty.zarr"
    empty.mkdir()
    _write(empty, 3.0, overwrite=True)
    np.testing.assert_array_equal(open_store(empty, "g")["v"].values, np.full(4, 3.0))
    with pytest.raises(StoreError, match="already exists"):
        _write(target, 4.0)
    assert _leftovers(target) == [] and _leftovers(empty) == []


def test_a_sidecar_that_cannot_be_written_leaves_the_target_as_it_was(tmp_path):
    """A store never stands without its PROV-JSON sidecar: the new one goes, the old one comes back."""
    target = tmp_path / "s.zarr"
    blocked = tmp_path / "s.zarr.prov.json"
    blocked.mkdir()  # a folder where the sidecar file must go: the rename of the sidecar fails
    (blocked / "user.txt").write_text("a user's file")
    with pytest.raises(OSError):
        _write(target, 1.0)
    assert not target.exists() and _leftovers(target) == [] and not list(tmp_path.glob(".s.zarr.prov.json.*"))
    assert (blocked / "user.txt").read_text() == "a user's file"
    blocked.rename(tmp_path / "moved")
    _write(target, 1.0)
    old_id = store_id(target)
    (tmp_path / "moved").rename(tmp_path / "aside")
    sidecar = target.with_name("s.zarr.prov.json")
    sidecar.unlink()
    sidecar.mkdir()
    with pytest.raises(OSError):  # replacing: the old store is back in place, whole
        _write(target, 2.0, overwrite=True)
    assert store_id(target) == old_id and _leftovers(target) == []
    np.testing.assert_array_equal(open_store(target, "g")["v"].values, np.full(4, 1.0))


def test_cli_overwrite_of_a_user_folder_is_one_error_and_deletes_nothing(mini_source, tmp_path):
    from click.testing import CliRunner

    from lsegeo.cli import main

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "results.csv").write_text("1,2,3\n")
    result = CliRunner().invoke(main, ["ingest", "camels", "--data-dir", str(mini_source), "-b", "01022500",
                                       "--out", str(mine), "--overwrite", "--catalog", ""])
    assert result.exit_code == 2, result.output
    assert "not a store written by lsegeo" in result.output and str(mine) in result.output
    assert "Traceback" not in result.output
    assert _files(mine) == {"results.csv": b"1,2,3\n"} and _leftovers(mine) == []


_KILLED = """
import sys, time
import numpy as np, xarray as xr
from lsegeo.io.stores import atomic_store
with atomic_store(sys.argv[1]) as tmp:
    xr.Dataset({"v": (("x",), np.zeros(4))}).to_zarr(tmp, group="g", zarr_format=3, consolidated=False)
    print("building", flush=True)
    time.sleep(120)
"""


def test_leftover_of_a_killed_builder_is_removed_and_nothing_else(tmp_path):
    target = tmp_path / "t.zarr"
    proc = subprocess.Popen([sys.executable, "-c", _KILLED, str(target)], cwd=REPO, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "building"
    (left,) = tmp_path.glob(".t.zarr.partial-*")
    marker = json.loads((left / BUILDER_MARKER).read_text())
    assert marker["pid"] == proc.pid and marker["host"] == socket.gethostname()
    _write(target, 9.0)  # the builder still runs: its folder is kept
    assert left.is_dir()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)
    proc.stdout.close()
    unrelated = tmp_path / ".foo.partial-x"  # not a leftover of this target, no marker
    unrelated.mkdir()
    (unrelated / "data.bin").write_bytes(b"user data")
    no_marker = tmp_path / ".t.zarr.partial-user"  # the target's pattern, but lsegeo did not write it
    no_marker.mkdir()
    (no_marker / "keep.txt").write_text("keep")
    elsewhere = tmp_path / ".t.zarr.partial-otherhost"  # a builder on another host: cannot tell, kept
    elsewhere.mkdir()
    (elsewhere / BUILDER_MARKER).write_text(json.dumps({"written_by": "lsegeo", "role": "partial",
                                                        "host": "another-host.invalid", "pid": proc.pid}))
    _write(target, 10.0, overwrite=True)  # the next run on the same target
    assert not left.exists()
    assert (unrelated / "data.bin").read_bytes() == b"user data"
    assert (no_marker / "keep.txt").read_text() == "keep"
    assert elsewhere.is_dir()
    np.testing.assert_array_equal(open_store(target, "g")["v"].values, np.full(4, 10.0))


def test_old_store_of_a_killed_replacement_goes_back(tmp_path):
    """A replacement killed between its two renames: the next run puts the old store back."""
    target = _write(tmp_path / "r.zarr", 1.0)
    the_id = store_id(target)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    aside = tmp_path / ".r.zarr.old-deadbeef"
    aside.mkdir()
    (aside / BUILDER_MARKER).write_text(json.dumps({"written_by": "lsegeo", "role": "old", "pid": pid,
                                                    "host": socket.gethostname()}))
    target.rename(aside / target.name)
    with pytest.raises(StoreError, match="already exists"):  # it is back: no silent rebuild over it
        _write(target, 2.0)
    assert store_id(target) == the_id and not aside.exists()


# --- item 5: damaged stores -----------------------------------------------------------------

@pytest.fixture()
def ens_copy(synthetic_ensemble_store, tmp_path) -> Path:
    """A finished copy of the synthetic ensemble store (5 basins, 20 members, 2 basins a chunk)."""
    path = tmp_path / "ensemble.zarr"
    shutil.copytree(synthetic_ensemble_store, path)
    return path


def _says_where(err: StoreError, path: Path, group: str, variable: str) -> None:
    text = str(err)
    assert str(path) in text and f"group {group!r}" in text and f"variable {variable!r}" in text, text


def test_deleted_variable_metadata_names_store_group_variable(ens_copy):
    (ens_copy / GROUP / "scores" / "zarr.json").unlink()
    with pytest.raises(StoreError, match="is missing") as err:
        open_ensemble(ens_copy)
    _says_where(err.value, ens_copy, GROUP, "scores")
    with pytest.raises(StoreError) as err:
        StoreGroup(ens_copy, GROUP).read("scores")
    _says_where(err.value, ens_copy, GROUP, "scores")
    with pytest.raises(StoreError) as err:  # a resume stops with the same message, before any work
        run_ensemble(ens_copy, client=None, progress=False)
    _says_where(err.value, ens_copy, GROUP, "scores")


def test_deleted_group_metadata_names_store_and_group(ens_copy):
    (ens_copy / GROUP / "zarr.json").unlink()
    with pytest.raises(StoreError, match="is missing") as err:
        open_ensemble(ens_copy)
    assert str(ens_copy) in str(err.value) and f"group {GROUP!r}" in str(err.value)


def test_truncated_chunk_names_store_group_variable(ens_copy):
    chunk = ens_copy / GROUP / "scores" / "c" / "0" / "0" / "0" / "0"
    chunk.write_bytes(chunk.read_bytes()[:10])
    ens = open_ensemble(ens_copy)  # lazy: the chunk is read when the values are
    with pytest.raises(StoreError, match="cannot read") as err:
        ens["scores"].load()
    _says_where(err.value, ens_copy, GROUP, "scores")
    with pytest.raises(StoreError) as err:
        StoreGroup(ens_copy, GROUP).read("scores")
    _says_where(err.value, ens_copy, GROUP, "scores")
    np.testing.assert_array_equal(ens["params"].values, open_ensemble(ens_copy)["params"].values)  # others read


def test_truncated_coordinate_chunk_names_it(ens_copy):
    chunk = next((ens_copy / GROUP / "basin" / "c").rglob("*"))
    chunk.write_bytes(chunk.read_bytes()[:3])
    with pytest.raises(StoreError, match="cannot be opened") as err:
        open_ensemble(ens_copy)
    _says_where(err.value, ens_copy, GROUP, "basin")


def test_finished_store_passes_the_consistency_pass(ens_copy):
    """Every chunk of a finished run has a file, the all-NaN one of the withheld basin included."""
    assert recheck_results(ens_copy) == {"reset": 0, "reasons": []}
    assert (StoreGroup(ens_copy, GROUP).read("status") == DONE).all()


@pytest.mark.parametrize("damage", ["deleted", "truncated"])
def test_resume_reruns_exactly_the_members_whose_scores_are_lost(ens_copy, synthetic_ensemble_store, damage,
                                                                 caplog):
    before = open_ensemble(synthetic_ensemble_store).load()
    chunk = ens_copy / GROUP / "scores" / "c" / "1" / "0" / "0" / "0"  # basins 2 and 3, every member
    if damage == "deleted":
        chunk.unlink()
    else:
        chunk.write_bytes(chunk.read_bytes()[:20])
    with local_client() as client, caplog.at_level("WARNING", logger="lsegeo.ensembles.store"):
        stats = run_ensemble(ens_copy, client=client, progress=False)
    n = 2 * before.sizes["member"]
    assert stats["rerun_unreadable"] == n and stats["ran"] + stats["failed"] == n
    assert stats["pending"] == 0
    assert f"{n} finished run(s) set back to pending" in caplog.text and "scores chunk (1, 0, 0, 0)" in caplog.text
    after = open_ensemble(ens_copy).load()
    np.testing.assert_array_equal(after["scores"].values, before["scores"].values)  # NaN where it was NaN
    np.testing.assert_array_equal(after["status"].values, before["status"].values)
    launches = after["run"].values
    assert (launches[2:4] == before["run"].values[2:4] + 1).all()  # rerun in this launch: exactly those
    np.testing.assert_array_equal(np.delete(launches, [2, 3], axis=0), np.delete(before["run"].values, [2, 3], axis=0))
    assert recheck_results(ens_copy)["reset"] == 0
