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
                                                    "address, coiled, gateway, kubernetes, local, pbs, "
                                                    "slurm"),
        ("cluster:\n  kind: address\n", "cluster", "needs 'address'"),
        ("clustr: {}\n", "clustr", "unknown key"),
        ("calibrate:\n  local_share: 1.5\n", "calibrate.local_share", "less than or equal to 1"),
        ("calibrate:\n  cv_folds: 1\n", "calibrate.cv_folds", "0 (no cross-validation) or at least 2 folds"),
        ("calibrate:\n  proposals: 50\n  local_candidates: 10\n", "calibrate", "local_candidates (10) must be"),
        ("regionalize:\n  interval_groups: huc\n", "regionalize.interval_groups", "'pur' (a threshold per PUR "
                                                                                 "region) or null"),
        ("regionalize:\n  donors: {near: -1}\n", "regionalize.donors.near", "greater than or equal to 0"),
        ("regionalize:\n  donors: {combine: mean}\n", "regionalize.donors.combine", "'mean_response'"),
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
    from lsegeo.models.external_settings import ExternalModelSettings

    for section, settings in (("cluster", ClusterSettings()), ("ingest", IngestSettings()),
                              ("ensemble", EnsembleSettings()), ("external", ExternalModelSettings())):
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


@pytest.mark.parametrize(
    "text, key, lines",
    [
        # the case: n_members 3, then 4 in the same section (plain YAML would run 4 members)
        ("ensemble:\n  n_members: 3\n  seed: 1\n  n_members: 4\n", "ensemble.n_members", (2, 4)),
        # a whole section given twice (plain YAML would silently drop the first)
        ("ensemble:\n  n_members: 3\ncluster:\n  n_workers: 2\nensemble:\n  seed: 4\n", "ensemble", (1, 5)),
        # deeper: a period given twice
        ("ensemble:\n  periods:\n    test: [1989-10-01, 1999-09-30]\n    test: [1990-10-01, 1999-09-30]\n",
         "ensemble.periods.test", (3, 4)),
        ("work_dir: a\ndata_dir: b\nwork_dir: c\n", "work_dir", (1, 3)),
    ],
    ids=["key-in-section", "whole-section", "nested", "top-level"],
)
def test_a_key_given_twice_is_an_error(tmp_path, text, key, lines):
    """A repeated key is a ConfigError naming the dotted key and both lines, never a silent last-wins."""
    p = tmp_path / "twice.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(p)
    assert str(info.value).startswith(f"{p}: {key}: given twice, on lines {lines[0]} and {lines[1]}")


def test_same_key_in_different_sections_and_merge_keys_are_fine(tmp_path):
    """Only a repeat within one mapping is refused; a key of a YAML merge (<<) may be overridden."""
    p = tmp_path / "ok.yaml"
    p.write_text("ingest:\n  chunk_basins: 16\n  overwrite: true\nensemble:\n  chunk_basins: 4\n  overwrite: true\n"
                 "direct:\n  <<: {seed: 1, budget: 50}\n  budget: 60\n")
    cfg = load_config(p)
    assert (cfg.ingest.chunk_basins, cfg.ensemble.chunk_basins) == (16, 4)
    assert (cfg.direct.seed, cfg.direct.budget) == (1, 60)


@pytest.mark.parametrize("section", ["ingest", "ensemble", "direct"])
def test_an_empty_basin_list_is_an_error(tmp_path, section):
    """`basins: []` would run an empty store: a ConfigError naming the key, in every section."""
    p = tmp_path / "empty.yaml"
    p.write_text(f"{section}:\n  basins: []\n")
    with pytest.raises(ConfigError) as info:
        load_config(p)
    assert f"{p}: {section}.basins: an empty list selects no basin" in str(info.value)


@pytest.mark.parametrize(
    "raw, key, words",
    [
        ({"ingest": {"basins": ["01013500", "01022500", "01013500"]}}, "ingest.basins",
         "01013500 listed more than once"),
        ({"ensemble": {"parameters": []}}, "ensemble.parameters", "an empty list selects no parameter"),
        ({"calibrate": {"parameters": ["fc", "fc"]}}, "calibrate.parameters", "fc listed more than once"),
        ({"calibrate": {"attributes": []}}, "calibrate.attributes", "an empty list selects no attribute"),
        ({"direct": {"parameters": []}}, "direct.parameters", "an empty list selects no parameter"),
    ],
)
def test_lists_of_names_select_something_once(raw, key, words):
    with pytest.raises(ConfigError) as info:
        validate_config(raw, "job.yaml")
    assert f"job.yaml: {key}: {words}" in str(info.value)


@pytest.mark.parametrize("raw, expect", [
    ({}, {"ingest.basins": None, "ensemble.basins": "observed", "direct.basins": "observed"}),
    ({"ensemble": {"basins": "all"}, "direct": {"basins": "all"}}, {"ensemble.basins": "all", "direct.basins": "all"}),
    ({"ensemble": {"basins": ["01022500"]}}, {"ensemble.basins": ["01022500"]}),
])
def test_documented_basin_selections_are_accepted(raw, expect):
    """docs/configuration.md: ingest.basins null (every gauge with forcing); observed | all | a list."""
    cfg = validate_config(raw)
    for dotted, value in expect.items():
        section, key = dotted.split(".")
        assert getattr(getattr(cfg, section), key) == value


def test_observed_and_all_are_the_only_basin_words():
    with pytest.raises(ConfigError) as info:
        validate_config({"ensemble": {"basins": "observd"}}, "job.yaml")
    assert "job.yaml: ensemble.basins" in str(info.value)


def test_null_means_the_documented_default():
    """Keys documented as null have the default their comment names (resolved later by the workflows)."""
    from lsegeo.parallel import local_workers
    from lsegeo.runtime import available_cores

    cfg = validate_config({"cluster": {"n_workers": None}, "sensitivity": {"seed": None, "share": None},
                           "calibrate": {"screening_share": None, "attributes": None}})
    assert cfg.cluster.n_workers is None and local_workers(None) == min(available_cores(), 4)
    assert local_workers(3) == 3
    assert cfg.sensitivity.seed is None and cfg.calibrate.screening_share is None
    with pytest.raises(ConfigError, match="cluster.n_workers"):
        validate_config({"cluster": {"n_workers": 0}})
    # regionalize: null intervals, pooled intervals, one kind of donor only
    cfg = validate_config({"regionalize": {"interval_scheme": None, "interval_groups": None,
                                           "donors": {"near": 0, "similar": 4}}})
    assert cfg.regionalize.interval_scheme is None and cfg.regionalize.interval_groups is None
    assert cfg.regionalize.settings().donors.near == 0 and cfg.regionalize.settings().donors.similar == 4
    with pytest.raises(ConfigError, match="near \\+ similar must be at least 1"):
        validate_config({"regionalize": {"donors": {"near": 0, "similar": 0}}})
