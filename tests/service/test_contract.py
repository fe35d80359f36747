"""The API contract (issue 12, item 7): every status the API answers is documented with its body, the option
bounds are in the schema, 405s list every method of the path, and a worker started without SINGSONG_ENGINE
serves the shipped default model. scripts/fuzz_api.py checks the same contract by fuzzing (schemathesis)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from service.keys import Keys
from tests.service.conftest import REPO

ERROR_REF = {"$ref": "#/components/schemas/ErrorBody"}
V1_STATUSES = {"401", "422", "429", "503"}
EXPECTED = {
    ("post", "/v1/jobs"): {"202", "400", "408", "413", "415", "422"},
    ("post", "/v1/batches"): {"202", "400", "408", "413", "415", "422"},
    ("get", "/v1/jobs/{job_id}"): {"200", "404"},
    ("get", "/v1/jobs/{job_id}/mix"): {"200", "404", "409", "422"},
    ("get", "/v1/jobs/{job_id}/accompaniment"): {"200", "404", "409", "422"},
    ("delete", "/v1/jobs/{job_id}"): {"204", "404"},
    ("get", "/v1/batches/{batch_id}"): {"200", "404"},
}


def test_every_status_is_documented_with_its_body(api):
    spec = api.get("/openapi.json").json()
    for (method, path), statuses in EXPECTED.items():
        responses = spec["paths"][path][method]["responses"]
        assert set(responses) == statuses | V1_STATUSES, (method, path, sorted(responses))
        for status in set(responses) - {"200", "202", "204"}:
            body = responses[status]["content"]["application/json"]["schema"]
            assert body == ERROR_REF, (method, path, status)
        for status in ("429", "503"):
            assert "Retry-After" in responses[status]["headers"]
    assert spec["components"]["schemas"]["ErrorBody"]["required"] == ["detail"]
    assert set(spec["paths"]["/readyz"]["get"]["responses"]) == {"200", "503"}


def test_option_bounds_are_in_the_schema(api):
    spec = api.get("/openapi.json").json()
    body = spec["paths"]["/v1/jobs"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    options = body["properties"]
    assert options["temperature"]["exclusiveMinimum"] == 0 and options["temperature"]["maximum"] == 5
    assert (options["takes"]["minimum"], options["takes"]["maximum"]) == (1, 16)
    assert options["seed"] == {
        "type": "integer",
        "minimum": 0,
        "maximum": 2**31 - 1,
        "description": options["seed"]["description"],
    }
    assert (options["top_p"]["minimum"], options["top_p"]["maximum"]) == (0, 1)
    assert options["format"]["enum"] == ["wav", "flac", "mp3"]
    batch = spec["paths"]["/v1/batches"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert batch["properties"]["files"]["minItems"] == 1 and batch["required"] == ["files"]


def test_405_lists_every_method_of_the_path(api, api_key):
    r = api.request("PUT", "/v1/jobs/" + "0" * 32, headers=api_key)
    assert r.status_code == 405 and r.headers["allow"] == "DELETE, GET"
    r = api.request("PATCH", "/v1/batches", headers=api_key)
    assert r.status_code == 405 and r.headers["allow"] == "POST"


@pytest.mark.slow
def test_worker_without_an_engine_setting_serves_the_shipped_model(settings, rclient, tmp_path):
    """`singsong worker` with no SINGSONG_ENGINE used to refuse to start ("no engine configured")."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SINGSONG_")}
    env.update(
        SINGSONG_REDIS_URL=settings.redis_url,
        SINGSONG_REDIS_PREFIX=settings.redis_prefix,
        SINGSONG_STORAGE_DIR=str(tmp_path / "storage"),
        SINGSONG_DEVICE="cpu",
        SINGSONG_HEARTBEAT_S="0.2",
        SINGSONG_CLAIM_MIN_IDLE_MS="1000",
        OMP_NUM_THREADS="1",
        PYTHONPATH=str(REPO),
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "service", "worker", "--name", "default-engine"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    workers = Keys(settings.redis_prefix).workers
    try:
        deadline = time.monotonic() + 120
        while rclient.zscore(workers, "default-engine") is None:
            assert proc.poll() is None, proc.stdout.read()
            assert time.monotonic() < deadline, "the worker sent no heartbeat"
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "engine Accompanist" in proc.stdout.read()
