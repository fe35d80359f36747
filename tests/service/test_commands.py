"""Command wiring: `singsong serve|worker|service ...` parse, and the container health probe."""

from __future__ import annotations

import os
import time

from core import cli
from service import healthcheck
from tests.service.conftest import LiveServer


def test_service_commands_are_registered(monkeypatch):
    assert {"service.cli", "pipelines.inference.batch"} <= set(cli.COMMAND_MODULES)
    parser = cli.build_parser()
    args = parser.parse_args(["serve", "--host", "0.0.0.0", "--port", "9000"])
    assert (args.host, args.port, args.handler.__name__) == ("0.0.0.0", 9000, "_serve")
    assert parser.parse_args(["worker", "--name", "gpu0"]).name == "gpu0"
    assert parser.parse_args(["service", "create-key", "--name", "x"]).name == "x"
    batch = parser.parse_args(["batch", "in", "out", "--server", "http://h:1", "--takes", "2"])
    assert (batch.server, batch.takes) == ("http://h:1", 2)


def test_healthcheck_probe(settings_factory, tmp_path, monkeypatch):
    beat = tmp_path / "beat"
    monkeypatch.setenv("SINGSONG_HEARTBEAT_FILE", str(beat))
    monkeypatch.setenv("SINGSONG_HEARTBEAT_TTL_S", "30")
    assert healthcheck.main(["--worker"]) == 1  # no heartbeat yet
    beat.touch()
    assert healthcheck.main(["--worker"]) == 0
    os.utime(beat, (time.time() - 60,) * 2)
    assert healthcheck.main(["--worker"]) == 1  # stale: the worker is stuck
    with LiveServer(settings_factory(auth="open")) as live:
        assert healthcheck.main(["--url", f"{live.url}/healthz"]) == 0
    assert healthcheck.main(["--url", f"{live.url}/healthz"]) == 1  # server gone
