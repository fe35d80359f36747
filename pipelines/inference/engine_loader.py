"""Load the accompaniment engine named by `SINGSONG_ENGINE`: a short name (`model`, `retrieval`; see `ENGINES`)
or any "package.module:callable".

The worker does not import a model itself: which engine runs (the cascade model once it exists, a tiny
test network, a future distilled model) is configuration, and the factory gets `model_dir` and `device`
so one image can serve several checkpoints. A factory is any callable
`factory(*, model_dir: Path | None, device: str) -> AccompanimentEngine`; a class works too.

There is deliberately no default engine: a service that silently produced untrained-network noise because
nobody configured a model would look healthy and be useless.
"""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

from core.device import resolve_device
from core.errors import SingsongError
from pipelines.inference.engine import AccompanimentEngine

#: Short engine names accepted wherever an engine is chosen (`--engine`, `SINGSONG_ENGINE`). For `model`,
#: `model_dir` is a model directory (None: the shipped default model); for `retrieval`, a retrieval library
#: folder (None: the bundled library).
ENGINES: dict[str, str] = {
    "model": "pipelines.inference.accompanist:load_engine",
    "retrieval": "pipelines.inference.retrieval:load_engine",
}


class EngineConfigError(SingsongError):
    """SINGSONG_ENGINE is missing, malformed, or names something that is not an engine factory."""


def load_engine(spec: str, model_dir: Path | None = None, device: str = "auto") -> AccompanimentEngine:
    if not spec:
        raise EngineConfigError(
            f"no engine configured: set SINGSONG_ENGINE to {' or '.join(ENGINES)} or package.module:factory "
            "(and SINGSONG_MODEL_DIR)"
        )
    spec = ENGINES.get(spec.strip(), spec)
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise EngineConfigError(f"SINGSONG_ENGINE must be {', '.join(ENGINES)} or package.module:factory, got {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise EngineConfigError(f"cannot import engine module {module_name!r}: {error}") from error
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise EngineConfigError(f"{module_name} has no callable {attr!r}")
    if model_dir is not None and not Path(model_dir).is_dir():
        raise EngineConfigError(f"model directory {model_dir} does not exist")
    kwargs = {"model_dir": Path(model_dir) if model_dir is not None else None, "device": resolve_device(device)}
    try:  # check the signature first: catching TypeError from the call would also hide the factory's own bugs
        inspect.signature(factory).bind(**kwargs)
    except TypeError:
        raise EngineConfigError(f"{spec} must accept the keyword arguments model_dir and device") from None
    engine = factory(**kwargs)
    if not isinstance(engine, AccompanimentEngine):
        raise EngineConfigError(f"{spec} returned {type(engine).__name__}, not an AccompanimentEngine")
    return engine
