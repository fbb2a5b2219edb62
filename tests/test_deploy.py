"""The deployment configurations shipped in deploy/ are valid configurations."""

from pathlib import Path

import pytest

from lsegeo.config import load_config

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"


@pytest.mark.parametrize("path", sorted(DEPLOY.glob("*.yaml")), ids=lambda p: p.name)
def test_deploy_config_valid(path):
    cfg = load_config(path)
    assert cfg.cluster.kind in {"local", "slurm", "pbs", "address"}
