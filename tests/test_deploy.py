"""The deployment files shipped in deploy/ are valid and become clusters, without any real cloud.

Every configuration validates and selects a registered cluster kind, and each is turned into
what its cluster class receives: dask-jobqueue's batch script (``job_script()``), the
dask-kubernetes operator's ``DaskCluster`` resource, a ``dask_gateway.Gateway`` and the cluster
options, the keyword arguments of ``coiled.Cluster``, a real ``LocalCluster`` (once), a scheduler
address. Misspelled options are refused with a ConfigError that names them. The Dockerfile copies
only files that exist and installs only extras that pyproject.toml defines.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path

import pytest

from lsegeo.config import load_config
from lsegeo.errors import ConfigError
from lsegeo.parallel import CLUSTER_KINDS, ClusterSettings, local_cluster_kwargs, make_cluster

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
CONFIGS = sorted(DEPLOY.glob("*.yaml"))


def _of_kind(*kinds: str) -> list[Path]:
    return [p for p in CONFIGS if load_config(p).cluster.kind in kinds]


def _settings(path: Path) -> ClusterSettings:
    return load_config(path).cluster.settings()


def test_every_kind_is_shipped():
    """deploy/ holds an example of every built-in cluster kind."""
    kinds = {load_config(p).cluster.kind for p in CONFIGS}
    assert kinds == set(CLUSTER_KINDS.names())
    assert {"local", "address", "slurm", "pbs", "kubernetes", "gateway", "coiled"} <= kinds


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_deploy_config_selects_a_registered_cluster(path):
    cluster = load_config(path).cluster
    assert CLUSTER_KINDS.check(cluster.kind) == cluster.kind
    settings = cluster.settings()
    assert settings.kind == cluster.kind and settings.options == cluster.options
    if cluster.kind == "address":
        assert settings.address and settings.address.startswith("tcp://")
        with CLUSTER_KINDS.create("address", settings) as target:  # connects to nothing yet
            assert target == settings.address
    elif cluster.kind == "local":
        kwargs = local_cluster_kwargs(settings)
        assert kwargs["n_workers"] == (settings.n_workers or kwargs["n_workers"]) >= 1
        assert kwargs["threads_per_worker"] == settings.threads_per_worker and kwargs["processes"] is True
        assert kwargs["env"]["OMP_NUM_THREADS"] == str(settings.threads_per_worker)
        assert kwargs["env"]["OMP_WAIT_POLICY"] in ("PASSIVE", os.environ.get("OMP_WAIT_POLICY"))


# -- dask-jobqueue -------------------------------------------------------------------------------

@pytest.mark.parametrize("path", _of_kind("slurm", "pbs"), ids=lambda p: p.name)
def test_hpc_job_script(path):
    """The batch script carries the configured account, queue, cores and prologue, then the thread limits."""
    pytest.importorskip("dask_jobqueue")
    from lsegeo.jobqueue import jobqueue_cluster

    kind = load_config(path).cluster.kind
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
    for directive in options.get("job_extra_directives", []):
        assert any(directive in line for line in lines), script
    body = script.splitlines()
    for command in options.get("job_script_prologue", []):
        assert command in body, script
    # the workers' threads: cores // processes, exported after the prologue, before the worker starts
    threads = options["cores"] // options["processes"]
    worker_line = next(i for i, line in enumerate(body) if "distributed.cli.dask_worker" in line)
    export = body.index(f"export OMP_NUM_THREADS={threads}")
    assert body.index(options["job_script_prologue"][-1]) < export < worker_line, script
    assert "export OMP_WAIT_POLICY=PASSIVE" in body[:worker_line] or "OMP_WAIT_POLICY" in os.environ
    assert f"--nthreads {threads}" in body[worker_line]


def test_jobqueue_options_are_checked_before_anything_starts():
    pytest.importorskip("dask_jobqueue")
    from lsegeo.jobqueue import jobqueue_keywords, jobqueue_options

    options = dict(load_config(DEPLOY / "pbs_derecho.yaml").cluster.options)
    with pytest.raises(ConfigError, match=r"cluster\.options\.ncpus: .*PBSCluster.*accepts: .*account.*cores"):
        jobqueue_options("pbs", {**options, "ncpus": 128})
    with pytest.raises(ConfigError, match=r"cluster\.options\.n_workers is set by lsegeo"):
        jobqueue_options("slurm", {"cores": 4, "n_workers": 3})
    assert {"account", "queue", "walltime", "cores", "job_script_prologue", "resource_spec"} <= jobqueue_keywords("pbs")
    # a prologue that exports a thread variable itself keeps it
    got = jobqueue_options("slurm", {"cores": 8, "processes": 2, "job_script_prologue": ["export OMP_NUM_THREADS=3"]})
    assert got["job_script_prologue"].count("export OMP_NUM_THREADS=3") == 1
    assert "export OMP_NUM_THREADS=4" not in got["job_script_prologue"]
    assert "export MKL_NUM_THREADS=4" in got["job_script_prologue"]


# -- Kubernetes (dask-kubernetes operator) -------------------------------------------------------

@pytest.mark.parametrize("path", _of_kind("kubernetes"), ids=lambda p: p.name)
def test_kubernetes_resource_spec(path, tmp_path):
    """The DaskCluster resource that KubeCluster would create: image, worker pods, resources, env, commands."""
    pytest.importorskip("dask_kubernetes")
    import yaml

    from lsegeo.clusters.kubernetes import kubernetes_cluster_spec, kubernetes_keywords

    settings = _settings(path)
    options = settings.options
    spec, kwargs = kubernetes_cluster_spec(settings)
    assert spec["apiVersion"] == "kubernetes.dask.org/v1" and spec["kind"] == "DaskCluster"
    assert spec["metadata"]["name"].startswith("lsegeo-")
    worker, scheduler = spec["spec"]["worker"], spec["spec"]["scheduler"]
    assert worker["replicas"] == settings.n_workers
    (wc,), (sc,) = worker["spec"]["containers"], scheduler["spec"]["containers"]
    assert wc["image"] == sc["image"] == options["image"]
    assert wc["resources"] == options["resources"]
    assert wc["args"][:4] == ["dask", "worker", "--nthreads", str(settings.threads_per_worker)]
    assert sc["args"][:2] == ["dask", "scheduler"]
    env = {e["name"]: e["value"] for e in wc["env"]}
    assert env["OMP_NUM_THREADS"] == env["OPENBLAS_NUM_THREADS"] == str(settings.threads_per_worker)
    assert env["OMP_WAIT_POLICY"] in ("PASSIVE", os.environ.get("OMP_WAIT_POLICY"))
    assert all(env[k] == str(v) for k, v in options["env"].items())
    assert kwargs["namespace"] == options["namespace"] and set(kwargs) <= kubernetes_keywords()
    assert spec["spec"]["idleTimeout"] == options["idle_timeout"]

    # a DaskCluster manifest of one's own (volumes, ...): lsegeo sets the worker count and thread limits
    manifest = tmp_path / "cluster.yaml"
    manifest.write_text(yaml.safe_dump(spec))
    custom = ClusterSettings(kind="kubernetes", n_workers=3, threads_per_worker=2,
                             options={"custom_cluster_spec": str(manifest), "namespace": "x"})
    spec2, kwargs2 = kubernetes_cluster_spec(custom)
    assert spec2["spec"]["worker"]["replicas"] == 3 and kwargs2 == {"namespace": "x"}
    env2 = {e["name"]: e["value"] for e in spec2["spec"]["worker"]["spec"]["containers"][0]["env"]}
    assert env2["OMP_NUM_THREADS"] == str(settings.threads_per_worker)  # the manifest's own value is kept

    with pytest.raises(ConfigError, match=r"cluster\.options\.imge: .*KubeCluster.*accepts: .*image"):
        kubernetes_cluster_spec(ClusterSettings(kind="kubernetes", options={**options, "imge": "x"}))
    with pytest.raises(ConfigError, match=r"cluster\.options\.image is required"):
        kubernetes_cluster_spec(ClusterSettings(kind="kubernetes", options={"namespace": "x"}))


# -- dask-gateway --------------------------------------------------------------------------------

@pytest.mark.parametrize("path", _of_kind("gateway"), ids=lambda p: p.name)
def test_gateway_request(path, monkeypatch):
    """The Gateway client (address, proxy, auth) and the server's cluster options, no server contacted."""
    pytest.importorskip("dask_gateway")
    from dask_gateway.auth import JupyterHubAuth

    from lsegeo.clusters.gateway import close_gateway, gateway_request

    settings = _settings(path)
    options = settings.options
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "not-a-real-token")
    request = gateway_request(settings)
    gateway = request.gateway()
    try:
        assert gateway.address == options["address"].rstrip("/")
        host = options["address"].split("/")[2]
        assert gateway.proxy_address == f"gateway://{host}:443"
        assert isinstance(gateway.auth, JupyterHubAuth) and gateway.auth.api_token == "not-a-real-token"
    finally:
        close_gateway(gateway)
    assert request.n_workers == settings.n_workers and request.adapt is None and request.shutdown_on_close
    assert request.cluster_options == {k: v for k, v in options.items() if k not in ("address", "auth")}
    monkeypatch.delenv("JUPYTERHUB_API_TOKEN")
    with pytest.raises(ConfigError, match=r"cluster\.options\.auth"):
        gateway_request(settings).gateway()
    adaptive = gateway_request(ClusterSettings(kind="gateway", address="http://gw:8000",
                                               options={"adapt": {"minimum": 0, "maximum": 4}}))
    assert adaptive.adapt == {"minimum": 0, "maximum": 4} and adaptive.gateway_kwargs == {"address": "http://gw:8000"}
    with pytest.raises(ConfigError, match=r"cluster\.options\.adapt\.max"):
        gateway_request(ClusterSettings(kind="gateway", options={"adapt": {"max": 4}}))


# -- Coiled --------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", _of_kind("coiled"), ids=lambda p: p.name)
def test_coiled_options(path):
    """The keyword arguments of coiled.Cluster, checked against its signature (constructing it contacts coiled.io)."""
    pytest.importorskip("coiled")
    from lsegeo.clusters.coiled import coiled_keywords, coiled_options

    settings = _settings(path)
    options = settings.options
    got = coiled_options(settings)
    assert got["n_workers"] == settings.n_workers and set(got) - {"n_workers"} <= coiled_keywords()
    assert got["container"] == options["container"] and got["worker_cpu"] == options["worker_cpu"]
    threads = options["worker_options"]["nthreads"]
    assert got["environ"]["OMP_NUM_THREADS"] == str(threads)
    assert all(got["environ"][k] == v for k, v in options["environ"].items())
    with pytest.raises(ConfigError, match=r"cluster\.options\.worker_cpus: .*coiled\.Cluster.*worker_cpu"):
        coiled_options(ClusterSettings(kind="coiled", options={**options, "worker_cpus": 4}))
    with pytest.raises(ConfigError, match=r"cluster\.options\.n_workers is set by lsegeo"):
        coiled_options(ClusterSettings(kind="coiled", options={"n_workers": 4}))


# -- local and address -----------------------------------------------------------------------------

@pytest.mark.integration
def test_local_yaml_starts_its_cluster():
    """deploy/local.yaml through the factory: the configured workers and threads, the thread environment."""
    from distributed import Client

    settings = _settings(DEPLOY / "local.yaml")
    with make_cluster(settings) as cluster, Client(cluster) as client:
        client.wait_for_workers(settings.n_workers, timeout=60)
        info = client.scheduler_info()["workers"].values()
        assert len(info) == settings.n_workers
        assert {w["nthreads"] for w in info} == {settings.threads_per_worker}
        env = client.run(lambda: (os.environ.get("OMP_NUM_THREADS"), os.environ.get("OMP_WAIT_POLICY")))
    assert set(env.values()) == {(str(settings.threads_per_worker), os.environ.get("OMP_WAIT_POLICY", "PASSIVE"))}


def test_local_and_address_refuse_what_they_cannot_use():
    with pytest.raises(ConfigError, match=r"cluster\.options\.n_workers is set by lsegeo \(use cluster\.n_workers"):
        local_cluster_kwargs(ClusterSettings(options={"n_workers": 3}))
    with pytest.raises(ConfigError, match=r"cluster\.options\.interface: kind 'address'"):
        make_cluster(ClusterSettings(kind="address", address="tcp://127.0.0.1:1", options={"interface": "eth0"}))
    kwargs = local_cluster_kwargs(ClusterSettings(threads_per_worker=2, options={"env": {"A": "1"}}))
    assert kwargs["env"]["A"] == "1" and kwargs["env"]["OMP_NUM_THREADS"] == "2" and kwargs["processes"] is True
    assert "env" not in local_cluster_kwargs(ClusterSettings(options={"processes": False}))  # Worker takes none


# -- the container recipe --------------------------------------------------------------------------

def _dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined, comments dropped."""
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    return [(m.group(1).upper(), m.group(2).strip()) for m in re.finditer(r"^\s*(\w+)\s+(.*)$", joined, re.M)]


def test_dockerfile_copies_what_exists_and_installs_defined_extras():
    instructions = _dockerfile_instructions((DEPLOY / "Dockerfile").read_text())
    assert instructions[0] == ("FROM", "python:3.11-slim")
    args = dict(a.split("=", 1) for op, a in instructions if op == "ARG" and "=" in a)
    copied = []
    for op, arguments in instructions:
        if op == "COPY":
            parts = [p for p in arguments.split() if not p.startswith("--")]
            copied += parts[:-1]
    assert copied
    missing = [src for src in copied if not list(ROOT.glob(src))]
    assert not missing, f"deploy/Dockerfile copies files the repository does not have: {missing}"
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert pyproject["project"]["readme"] in copied  # setuptools needs it to build the package
    defined = set(pyproject["project"]["optional-dependencies"])
    runs = " ".join(a for op, a in instructions if op == "RUN")
    runs = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), runs)
    installs = re.findall(r"pip install -c constraints\.txt [^\"]*\"\.\[([^\]]+)\]\"", runs)
    assert installs, "deploy/Dockerfile installs the package with pip install -c constraints.txt '.[extras]'"
    asked = {e.strip() for group in installs for e in group.split(",")}
    assert "ml" in asked and "hpc" in asked
    assert asked <= defined, f"deploy/Dockerfile asks for extras that pyproject.toml does not define: {asked - defined}"
    user = [a for op, a in instructions if op == "USER"]
    assert user and user[-1] not in ("root", "0")
    env = " ".join(a for op, a in instructions if op == "ENV")
    assert "LSEGEO_DATA_DIR=" in env
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().split()
    assert all(f"!{src.rstrip('/')}" in [i.rstrip("/") for i in ignore] for src in copied)
