"""`singsong serve`, `singsong worker` and `singsong service create-key|revoke-key|list-keys`.

Every command reads its configuration from the same `SINGSONG_*` environment as the containers do; the
flags only cover what differs between processes (where the API listens, which name a worker uses).
"""

from __future__ import annotations

import argparse
import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import redis

    from service.keys import Keys


def register(groups: dict[str, argparse._SubParsersAction]) -> None:
    serve = groups["_top"].add_parser(
        "serve",
        help="run the REST API (uvicorn)",
        description="Run the REST API. Configuration: SINGSONG_* environment variables (see service/config.py).",
    )
    serve.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (default 1)")
    serve.set_defaults(handler=_serve)

    worker = groups["_top"].add_parser(
        "worker",
        help="run a GPU worker that processes queued jobs",
        description="Consume the job queue and run the accompaniment engine (SINGSONG_ENGINE; default: the "
        "cascade model shipped in the package, or SINGSONG_MODEL_DIR) in batches. "
        "SIGTERM finishes the current batch and exits.",
    )
    worker.add_argument("--name", default=None, help="consumer name (default: hostname-pid)")
    worker.add_argument("--metrics-port", type=int, default=None, help="serve Prometheus metrics on this port")
    worker.set_defaults(handler=_worker)

    create = groups["service"].add_parser("create-key", help="mint an API key (printed once, stored hashed)")
    create.add_argument("--name", required=True, help="who the key is for (shown in list-keys)")
    create.set_defaults(handler=_create_key)
    revoke = groups["service"].add_parser("revoke-key", help="revoke an API key by its owner id")
    revoke.add_argument("owner", help="owner id, as printed by create-key / list-keys")
    revoke.set_defaults(handler=_revoke_key)
    listing = groups["service"].add_parser("list-keys", help="list API keys (names and owner ids, never keys)")
    listing.set_defaults(handler=_list_keys)


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from service.api.server import uvicorn_options
    from service.config import Settings

    uvicorn.run(
        "service.api.app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        proxy_headers=True,
        log_level="info",
        **uvicorn_options(Settings()),  # request-header timeout (slow clients)
    )
    return 0


def _worker(args: argparse.Namespace) -> int:
    from service.config import Settings
    from service.worker import Worker

    settings = Settings()
    port = args.metrics_port if args.metrics_port is not None else settings.worker_metrics_port
    if port:
        from prometheus_client import start_http_server

        start_http_server(port)
    logging.getLogger("singsong").setLevel(logging.INFO)
    worker = Worker(settings, name=args.name)
    worker.install_signal_handlers()
    worker.run()
    return 0


def _redis() -> tuple[redis.Redis, Keys]:
    """Imported lazily, like every handler's dependencies, to keep `singsong --help` instant."""
    import redis

    from service.config import Settings
    from service.keys import Keys

    settings = Settings()
    return redis.Redis.from_url(settings.redis_url, decode_responses=True), Keys(settings.redis_prefix)


def _create_key(args: argparse.Namespace) -> int:
    from service.auth import create_key

    client, keys = _redis()
    api_key, owner = create_key(client, keys, args.name)
    print(f"API key for {args.name!r} (owner id {owner}); it is shown only now, store it safely:")
    print(api_key)
    return 0


def _revoke_key(args: argparse.Namespace) -> int:
    from core.errors import SingsongError
    from service.auth import revoke_key

    client, keys = _redis()
    if not revoke_key(client, keys, args.owner):
        raise SingsongError(f"no API key with owner id {args.owner}")
    print(f"revoked the key of owner {args.owner}")
    return 0


def _list_keys(args: argparse.Namespace) -> int:
    from service.auth import list_keys

    client, keys = _redis()
    for entry in list_keys(client, keys):
        print(f"{entry['owner']}  {entry['name']}")
    return 0
