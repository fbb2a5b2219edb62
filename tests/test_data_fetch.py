"""`lsegeo data fetch camels` against a real local HTTP server: checksums, resume, damaged downloads, ingest."""

from __future__ import annotations

import bz2
import contextlib
import http.server
import threading
import zipfile
from functools import partial
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from lsegeo.cli import main
from lsegeo.cli.data import data as _data  # noqa: F401 (registers `lsegeo data`)
from lsegeo.errors import ConfigError, InputFormatError
from lsegeo.ingest.downloads import sha256_of
from lsegeo.ingest.fetch import build_manifest, fetch_camels, read_manifest, select_entries, write_manifest
from lsegeo.ingest.fetch_official import ARCHIVE, STAGING, withheld_gauges

BASINS = ["01013500", "01022500", "01031500"]  # 01013500 is withheld: forcing, no streamflow
FAULTS: dict[str, str] = {}  # URL path -> "truncate" | "corrupt"


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves a directory; a path in FAULTS is sent cut short (half the announced bytes) or with a byte changed."""

    def do_GET(self):  # noqa: N802 (http.server's name)
        fault = FAULTS.get(self.path)
        if fault is None:
            return super().do_GET()
        body = Path(self.translate_path(self.path)).read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if fault == "truncate":
            self.wfile.write(body[: len(body) // 2])
            self.close_connection = True
        else:
            self.wfile.write(bytes([body[0] ^ 1]) + body[1:])

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serve(directory: Path):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(_Handler, directory=str(directory)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def mirror(data_dir):
    with serve(data_dir) as url:
        yield url


def _files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def test_manifest_is_the_data(data_dir):
    """The packaged manifest lists exactly the files of the data directory, with their sizes and hashes."""
    packaged = read_manifest()
    assert packaged == build_manifest(data_dir)
    groups = {e.group for e in packaged}
    assert {"attributes", "forcing", "streamflow", "maurer", "shapes"} <= groups
    with bz2.open(data_dir / "camels_us/streamflow/camels_us_streamflow_cfs_1980-2014.csv.bz2", "rt") as f:
        columns = next(f).strip().split(",")[1:]
    names = pd.read_csv(data_dir / "camels_us/attributes/camels_name.txt", sep=";", dtype=str)["gauge_id"]
    withheld = withheld_gauges(names)
    assert len(withheld) == 135 and columns == [g for g in names if g not in withheld]
    assert not {e.gauge for e in packaged if e.group == "streamflow_qc"} & withheld  # no withheld streamflow
    chosen, missing = select_entries(packaged, "forcing,streamflow_qc", ["01013500", "02464000"])
    assert [e.path.rsplit("/", 1)[1] for e in chosen] == ["01013500_lump_cida_forcing_leap.txt.bz2",
                                                          "02464000_streamflow_qc.txt.bz2"]
    assert missing == []
    with pytest.raises(ConfigError, match="unknown group.*forcings"):
        select_entries(packaged, "forcings")


def test_fetch_resume_then_ingest(data_dir, mirror, tmp_path):
    """Fetch a few basins through the CLI, every file identical; again: all skipped; then ingest the copy."""
    dest = tmp_path / "data"
    args = ["data", "fetch", "camels", "--dest", str(dest), "--base-url", mirror, "--basins", ",".join(BASINS), "-q"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    expected = {e.path for e in select_entries(read_manifest(), None, BASINS)[0]}
    assert len(expected) == 9 + 3 + 1  # attribute files, forcing of 3 basins, the streamflow table
    assert _files(dest) == expected  # nothing else: no temporary file
    for rel in expected:
        assert sha256_of(dest / rel) == sha256_of(data_dir / rel), rel
    assert "13 files fetched" in result.output and "0 already present" in result.output

    again = fetch_camels(dest, base_url=mirror, basins=BASINS, progress=False)
    assert (again.downloaded, again.skipped, again.bytes) == (0, 13, 0)

    store = tmp_path / "basins.zarr"
    result = CliRunner().invoke(main, ["ingest", "camels", "--data-dir", str(dest), "--out", str(store), "--end",
                                       "1980-12-31", "--workers", "1", "--catalog", "", "-q",
                                       *[a for b in BASINS for a in ("--basin", b)]])
    assert result.exit_code == 0, result.output
    from lsegeo.io.stores import open_store

    observed = open_store(store, "observed").load()
    forcing = open_store(store, "forcing").load()
    assert list(forcing.basin.values) == BASINS
    assert not bool(observed["has_observations"].sel(basin="01013500"))
    q = observed["qobs"].sel(basin="01022500")
    assert 0.1 < float(q.mean()) < 10 and int(q.notnull().sum()) == 366  # mm/day, 1980 complete
    assert 1 < float(forcing["prcp"].mean()) < 10


@pytest.mark.parametrize("fault", ["truncate", "corrupt"])
def test_damaged_download_leaves_nothing(mirror, tmp_path, fault):
    """A download cut short or with a wrong byte: a clear error, no file at the target, no temporary file."""
    rel = "camels_us/forcing/daymet/01022500_lump_cida_forcing_leap.txt.bz2"
    entry = next(e for e in read_manifest() if e.path == rel)
    FAULTS["/" + rel] = fault
    try:
        with pytest.raises(InputFormatError) as err:
            fetch_camels(tmp_path, base_url=mirror, only="forcing", basins=["01022500"], progress=False)
    finally:
        FAULTS.clear()
    message = str(err.value)
    assert str(tmp_path / rel) in message and mirror + rel in message
    assert f"expected {entry.size} bytes with sha256 {entry.sha256}" in message
    if fault == "truncate":
        assert "cut short" in message or f"got {entry.size // 2} bytes" in message
    else:
        assert f"got {entry.size} bytes with sha256 " in message
    assert _files(tmp_path) == set()


def test_a_file_lsegeo_did_not_write_is_kept(data_dir, mirror, tmp_path):
    """A present file with another hash is refused and left as it was; --overwrite replaces it."""
    rel = "camels_us/attributes/camels_topo.txt"
    mine = tmp_path / rel
    mine.parent.mkdir(parents=True)
    mine.write_text("gauge_id;gauge_lat\n01013500;47.2\n")
    result = CliRunner().invoke(main, ["data", "fetch", "camels", "--dest", str(tmp_path), "--base-url", mirror,
                                       "--only", "attributes", "-q"])
    assert result.exit_code == 2, result.output
    assert "exists but is not the manifest's" in result.output and "--overwrite" in result.output
    assert mine.read_text() == "gauge_id;gauge_lat\n01013500;47.2\n"
    report = fetch_camels(tmp_path, base_url=mirror, only="attributes", progress=False, overwrite=True)
    assert (report.downloaded, report.replaced) == (9, 1)
    assert sha256_of(mine) == sha256_of(data_dir / rel)


def test_official_archive_relaid_out_and_checked(data_dir, tmp_path):
    """NCAR's layout (single attribute files, the time-series zip) becomes lsegeo's files, byte for byte.

    The published files are stood in for by lsegeo's real files: the attribute tables of ten gauges,
    and a zip in NCAR's folder layout with the real forcing of two gauges and the real as-published
    streamflow files of the eight gauges that are not withheld. camels_hydro.txt is served with an
    extra row for a withheld gauge, which must not reach the data directory; so must not the
    streamflow file in the zip of withheld 01013500 (here a copy of another gauge's). The streamflow
    table made from the as-published files must equal lsegeo's table, which came from another copy.
    """
    src = data_dir / "camels_us"
    names = (src / "attributes/camels_name.txt").read_text().splitlines(keepends=True)[:11]
    gauges = [line.split(";")[0] for line in names[1:]]
    kept = [g for g in gauges if g not in withheld_gauges(gauges)]
    assert len(kept) == 8
    hydro = [ln for ln in (src / "attributes/camels_hydro.txt").read_text().splitlines(keepends=True)
             if ln.split(";")[0] in ("gauge_id", *kept)]
    # what lsegeo's layout holds for these gauges
    layout = tmp_path / "layout"
    (layout / "camels_us/attributes").mkdir(parents=True)
    (layout / "camels_us/attributes/camels_name.txt").write_text("".join(names))
    (layout / "camels_us/attributes/camels_hydro.txt").write_text("".join(hydro))
    readme = "camels_us/attributes/readme.txt"  # not served below: documentation is skipped, a table never
    (layout / readme).write_bytes((data_dir / readme).read_bytes())
    for g in ("01022500", "01031500"):
        (layout / "camels_us/forcing/daymet").mkdir(parents=True, exist_ok=True)
        name = f"{g}_lump_cida_forcing_leap.txt.bz2"
        (layout / "camels_us/forcing/daymet" / name).write_bytes((src / "forcing/daymet" / name).read_bytes())
    table = pd.read_csv(src / "streamflow/camels_us_streamflow_cfs_1980-2014.csv.bz2", index_col="date",
                        usecols=["date", *kept])[kept]
    (layout / "camels_us/streamflow").mkdir()
    (layout / "camels_us/streamflow/camels_us_streamflow_cfs_1980-2014.csv.bz2").write_bytes(
        bz2.compress(table.to_csv(float_format="%.2f", lineterminator="\n").encode(), 9))
    manifest = write_manifest(build_manifest(layout), tmp_path / "manifest.csv")
    # the published files, in NCAR's layout
    ncar = tmp_path / "ncar"
    ncar.mkdir()
    (ncar / "camels_name.txt").write_text("".join(names))
    (ncar / "camels_hydro.txt").write_text("".join(hydro) + "01013500;" + ";".join(["NA"] * 13) + "\n")
    with zipfile.ZipFile(ncar / ARCHIVE, "w", zipfile.ZIP_DEFLATED) as zf:
        base = "basin_dataset_public_v1p2"
        for g in ("01022500", "01031500"):
            text = bz2.decompress((src / f"forcing/daymet/{g}_lump_cida_forcing_leap.txt.bz2").read_bytes())
            zf.writestr(f"{base}/basin_mean_forcing/daymet/01/{g}_lump_cida_forcing_leap.txt", text)
        for g in [*kept, "01013500"]:
            text = bz2.decompress((src / f"streamflow/{kept[0] if g == '01013500' else g}_streamflow_qc.txt.bz2")
                                  .read_bytes())
            zf.writestr(f"{base}/usgs_streamflow/01/{g}_streamflow_qc.txt", text)
    dest = tmp_path / "data"
    with serve(ncar) as url:
        with pytest.raises(ConfigError, match="--allow-unverified"):
            fetch_camels(dest, base_url=url, source="official", manifest=manifest, progress=False)
        assert not dest.exists() or _files(dest) == set()
        report = fetch_camels(dest, base_url=url, source="official", manifest=manifest, progress=False,
                              allow_unverified=True)
    assert report.source == "official" and report.downloaded == 5 and report.unavailable == [readme]
    assert _files(dest) == _files(layout) - {readme}  # the archive is removed, nothing withheld was written
    for rel in _files(dest):
        assert sha256_of(dest / rel) == sha256_of(layout / rel), rel
    assert not (dest / STAGING).exists()
