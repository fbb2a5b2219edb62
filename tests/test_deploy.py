"""The deployment configurations shipped in deploy/ are valid and select clusters that can be built."""

from pathlib import Path

import pytest

from lsegeo.config import load_config
from lsegeo.parallel import CLUSTER_KINDS

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
CONFIGS = sorted(DEPLOY.glob("*.yaml"))


def test_every_kind_is_shipped():
    """deploy/ holds an example of every built-in cluster kind (PBS: ctsm_launch.yaml)."""
    kinds = {load_config(p).cluster.kind for p in CONFIGS}
    assert kinds == set(CLUSTER_KINDS.names())


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_deploy_config_selects_a_registered_cluster(path):
    cluster = load_config(path).cluster
    assert cluster.kind in CLUSTER_KINDS
    assert CLUSTER_KINDS.check(cluster.kind) == cluster.kind
    settings = cluster.settings()
    assert settings.kind == cluster.kind and settings.options == cluster.options
    if cluster.kind == "address":
        assert settings.address and settings.address.startswith("tcp://")
        with CLUSTER_KINDS.create("address", settings) as target:  # connects to nothing yet
            assert target == settings.address
    elif cluster.kind == "local":
        assert callable(CLUSTER_KINDS.get("local"))


@pytest.mark.parametrize("path", [p for p in CONFIGS if load_config(p).cluster.kind in ("slurm", "pbs")],
                         ids=lambda p: p.name)
@pytest.mark.parametrize("kind", ["slurm", "pbs"])
def test_hpc_job_script(path, kind):
    """The batch script that dask-jobqueue would submit carries the configured account, queue and cores."""
    pytest.importorskip("dask_jobqueue")
    from lsegeo.jobqueue import jobqueue_cluster

    options = dict(load_config(path).cluster.options)
    cluster = jobqueue_cluster(kind, options)
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    flag = {"slurm": "#SBATCH", "pbs": "#PBS"}[kind]
    lines = [line for line in script.splitlines() if line.startswith(flag)]
    assert any(options["account"] in line for line in lines), script
    assert any(options["queue"] in line for line in lines), script
    assert any(str(options["cores"]) in line for line in lines), script
    for command in options.get("job_script_prologue", []):
        assert command in script
