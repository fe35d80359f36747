"""Container health probe: `python -m service.healthcheck [--worker]` (exit 0 healthy, 1 not).

One image runs both roles, so its HEALTHCHECK must work for both: the API is probed over HTTP
(/healthz, liveness only - readiness is the orchestrator's business via /readyz), a worker by the age of
the file its heartbeat thread touches (SINGSONG_HEARTBEAT_FILE). A file rather than a Redis lookup: a
worker cut off from Redis is not broken (it waits), and restarting it would not reconnect it any sooner.
Standard library only, so the probe costs no imports of torch or FastAPI.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import urllib.request


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--worker", action="store_true", help="probe a worker (heartbeat file) instead of the API")
    parser.add_argument("--url", default=f"http://127.0.0.1:{os.environ.get('PORT', '8000')}/healthz")
    args = parser.parse_args(argv)
    if args.worker:
        path = os.environ.get("SINGSONG_HEARTBEAT_FILE", "")
        max_age = float(os.environ.get("SINGSONG_HEARTBEAT_TTL_S", "30"))
        try:
            age = time.time() - os.stat(path).st_mtime
        except OSError:
            print(f"no heartbeat file {path!r}", file=sys.stderr)
            return 1
        if age > max_age:
            print(f"last heartbeat {age:.0f} s ago", file=sys.stderr)
            return 1
        return 0
    try:
        with urllib.request.urlopen(args.url, timeout=5) as response:  # a fixed local URL, never user input
            return 0 if response.status == 200 else 1
    except OSError as error:
        print(f"{args.url}: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
