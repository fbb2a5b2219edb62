"""YAML configuration: defaults, and errors that point at the bad key."""

from __future__ import annotations

import datetime as dt

import pytest

from lsegeo.config import apply_overrides, load_config, validate_config
from lsegeo.errors import ConfigError, DataNotFoundError
from lsegeo.locations import DATA_DIR_ENV, resolve_data_dir


def test_defaults():
    cfg = validate_config({})
    assert cfg.cluster.kind == "local" and cfg.ingest.chunk_basins == 64
    assert cfg.ingest.start == dt.date(1980, 1, 1)


def test_load_file(tmp_path):
    p = tmp_path / "job.yaml"
    p.write_text("ingest:\n  basins: ['01013500', '01022500']\n  end: 1990-12-31\ncluster:\n  n_workers: 2\n")
    cfg = load_config(p)
    assert cfg.ingest.basins == ["01013500", "01022500"] and cfg.cluster.n_workers == 2


@pytest.mark.parametrize(
    "text, key, words",
    [
        ("ingest:\n  chunk_basin: 10\n", "ingest.chunk_basin", "unknown key"),
        ("ingest:\n  chunk_basins: 0\n", "ingest.chunk_basins", "greater than or equal to 1"),
        ("ingest:\n  basins: [1013500]\n", "ingest.basins", "8-digit strings"),
        ("ingest:\n  start: 2000-01-01\n  end: 1999-01-01\n", "ingest", "before start"),
        ("cluster:\n  kind: cloud\n", "cluster.kind", "unknown cluster kind 'cloud'; known cluster kinds: "
                                                    "address, local, pbs, slurm"),
        ("cluster:\n  kind: address\n", "cluster", "needs 'address'"),
        ("clustr: {}\n", "clustr", "unknown key"),
        ("calibrate:\n  local_share: 1.5\n", "calibrate.local_share", "less than or equal to 1"),
        ("calibrate:\n  proposals: 50\n  local_candidates: 10\n", "calibrate", "local_candidates (10) must be"),
    ],
)
def test_bad_keys_are_named(tmp_path, text, key, words):
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(p)
    assert f"{p}: {key}: " in str(info.value)
    assert words in str(info.value)


def test_defaults_come_from_the_settings_classes():
    """Each default is written once, in the settings dataclass of its step."""
    from dataclasses import fields

    from lsegeo.ensembles.settings import EnsembleSettings
    from lsegeo.ingest.settings import IngestSettings
    from lsegeo.parallel import ClusterSettings
    from lsegeo.periods import DEFAULT_PERIODS

    cfg = validate_config({})
    for section, settings in (("cluster", ClusterSettings()), ("ingest", IngestSettings()),
                              ("ensemble", EnsembleSettings())):
        for f in fields(settings):
            assert getattr(getattr(cfg, section), f.name) == getattr(settings, f.name), (section, f.name)
    assert cfg.cluster.settings() == ClusterSettings()
    assert cfg.ensemble.periods == {p.name: (p.start, p.end) for p in DEFAULT_PERIODS}


def test_overrides_are_validated():
    cfg = validate_config({"cluster": {"n_workers": 2}, "ingest": {"chunk_basins": 16}})
    new = apply_overrides(cfg, {"cluster.n_workers": 3, "ingest.end": "1999-12-31", "ingest.start": None,
                                "work_dir": dt.date(2000, 1, 1).isoformat()})
    assert new.cluster.n_workers == 3 and new.ingest.chunk_basins == 16 and new.ingest.end == dt.date(1999, 12, 31)
    assert cfg.cluster.n_workers == 2 and str(new.work_dir) == "2000-01-01"
    with pytest.raises(ConfigError) as info:
        apply_overrides(cfg, {"ingest.chunk_basins": 0})
    assert "command line: ingest.chunk_basins: " in str(info.value)
    with pytest.raises(ConfigError) as info:
        apply_overrides(cfg, {"cluster.kind": "cloud"}, source="--kind")
    assert "--kind: cluster.kind: unknown cluster kind 'cloud'" in str(info.value)


def test_not_yaml(tmp_path):
    p = tmp_path / "x.yaml"
    p.write_text("ingest: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(p)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")


def test_data_dir_from_environment(monkeypatch, data_dir, tmp_path):
    monkeypatch.setenv(DATA_DIR_ENV, str(data_dir))
    assert resolve_data_dir(expect="camels_us") == data_dir
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "elsewhere"))
    with pytest.raises(DataNotFoundError) as info:
        resolve_data_dir(expect="camels_us")
    assert str(tmp_path / "elsewhere") in str(info.value) and DATA_DIR_ENV in str(info.value)


def test_documented_keys_are_every_key_and_valid():
    """The YAML block of docs/configuration.md lists every key of every section, with valid values."""
    from pathlib import Path

    import yaml

    from lsegeo.config import Config, validate_config

    text = (Path(__file__).parents[1] / "docs" / "configuration.md").read_text()
    block = text.split("```yaml\n", 1)[1].split("```", 1)[0]
    documented = yaml.safe_load(block)
    validate_config(documented, "docs/configuration.md")
    defaults = Config().model_dump()
    assert set(documented) == set(defaults)
    for section, keys in defaults.items():
        if isinstance(keys, dict):
            assert set(documented[section]) == set(keys), section
