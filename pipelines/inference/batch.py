"""`singsong batch IN_DIR OUT_DIR`: accompany every vocal in a folder, locally or through a running service.

* **Local** (default): loads the engine in-process (`--engine model|retrieval|module:factory`, default
  $SINGSONG_ENGINE), sorts the vocals by duration and runs them through `accompany_batch` `--batch-size` at a
  time, so similar lengths share a forward pass exactly as on the service's workers. No Redis involved.
* **Remote** (`--server URL [--api-key K]`): uploads each vocal to `POST /v1/jobs`, keeps at most
  `--parallel` jobs in flight, polls them, downloads the results and deletes the server's copy. 429/503
  answers are waited out for as long as their Retry-After says, so a busy service slows the run down
  instead of failing it.

Outputs mirror the input tree: `IN/a/song.wav` -> `OUT/a/song.mix.wav` and `OUT/a/song.accompaniment.wav`
(`song.take1.mix.wav` ... with `--takes N`). The summary lists the inputs with little or no sung melody (melody
coverage below the threshold of `melody_check.py`; the service reports it in the job status remotely).
Every output is written atomically (temporary file, rename), so a run can be interrupted at any point and
restarted: inputs whose outputs all exist are skipped.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported lazily at run time: `singsong --help` must not pay for torch or httpx
    import httpx
    from tqdm import tqdm

    from pipelines.inference.engine import GenerationOptions

AUDIO_SUFFIXES = {".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a", ".aac", ".webm", ".aif", ".aiff", ".caf", ".wv"}
KINDS = ("mix", "accompaniment")


@dataclass
class BatchSummary:
    done: int = 0
    skipped: int = 0
    failed: list[tuple[Path, str]] = field(default_factory=list)
    low_melody: list[tuple[Path, float, str]] = field(default_factory=list)  # (input, coverage, warning)

    def check_melody(self, path: Path, coverage: float | None, warnings: Sequence[str]) -> None:
        if coverage is not None and warnings:
            self.low_melody.append((path, coverage, warnings[0]))


def register(groups: dict[str, argparse._SubParsersAction]) -> None:
    p = groups["_top"].add_parser(
        "batch",
        help="accompany every vocal in a folder (locally, or via a running service)",
        description="Accompany every audio file under IN_DIR into OUT_DIR (same tree). Resumable: inputs "
        "whose outputs exist are skipped.",
    )
    p.add_argument("in_dir", type=Path, metavar="IN_DIR")
    p.add_argument("out_dir", type=Path, metavar="OUT_DIR")
    p.add_argument("--server", default=None, help="service URL; without it the engine runs in this process")
    p.add_argument("--api-key", default=os.environ.get("SINGSONG_API_KEY"), help="API key (or $SINGSONG_API_KEY)")
    p.add_argument("--engine", default=os.environ.get("SINGSONG_ENGINE", ""), help="model, retrieval or module:factory")
    p.add_argument("--model-dir", type=Path, default=os.environ.get("SINGSONG_MODEL_DIR") or None)
    p.add_argument("--device", default="auto")
    p.add_argument("--batch-size", type=int, default=8, help="vocals per engine call (local mode)")
    p.add_argument("--parallel", type=int, default=4, help="jobs in flight on the server (remote mode)")
    p.add_argument("--format", choices=("wav", "flac", "mp3"), default="wav")
    p.add_argument("--takes", type=int, default=1)
    p.add_argument("--seed", type=int, default=None, help="same seed for every vocal (default: random)")
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=_batch)


def output_paths(in_dir: Path, out_dir: Path, source: Path, takes: int, fmt: str) -> dict[tuple[str, int], Path]:
    rel = source.relative_to(in_dir)
    base = out_dir / rel.parent
    tag = [""] if takes == 1 else [f".take{t}" for t in range(takes)]
    return {(kind, t): base / f"{rel.stem}{tag[t]}.{kind}.{fmt}" for t in range(takes) for kind in KINDS}


def find_inputs(in_dir: Path) -> list[Path]:
    def hidden(p: Path) -> bool:
        return any(part.startswith(".") for part in p.relative_to(in_dir).parts)

    return sorted(p for p in in_dir.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES and not hidden(p))


def _batch(args: argparse.Namespace) -> int:
    from core.errors import SingsongError

    if not args.in_dir.is_dir():
        raise SingsongError(f"{args.in_dir}: not a directory")
    if args.out_dir.resolve().is_relative_to(args.in_dir.resolve()):
        raise SingsongError("OUT_DIR must not be inside IN_DIR (outputs would be picked up as inputs next time)")
    inputs = find_inputs(args.in_dir)
    todo = [p for p in inputs if not all(o.exists() for o in _outputs(args, p).values())]
    summary = BatchSummary(skipped=len(inputs) - len(todo))
    if args.server:
        run_remote(args, todo, summary)
    else:
        run_local(args, todo, summary)
    print(
        f"{args.out_dir}: {summary.done} accompanied, {summary.skipped} already done, {len(summary.failed)} failed, "
        f"{len(summary.low_melody)} with little or no sung melody"
    )
    for path, coverage, warning in summary.low_melody:
        print(f"  warning: {path}: melody coverage {coverage:.2f}: {warning}", file=sys.stderr)
    for path, problem in summary.failed:
        print(f"  {path}: {problem}", file=sys.stderr)
    return 1 if summary.failed else 0


def _outputs(args: argparse.Namespace, source: Path) -> dict[tuple[str, int], Path]:
    return output_paths(args.in_dir, args.out_dir, source, args.takes, args.format)


def _options(args: argparse.Namespace) -> GenerationOptions:
    from pipelines.inference.engine import GenerationOptions

    options = GenerationOptions(seed=args.seed, temperature=args.temperature, takes=args.takes)
    options.validate()
    return options


# ------------------------------------------------------------------------------------------------ local
def run_local(args: argparse.Namespace, todo: list[Path], summary: BatchSummary) -> None:
    from tqdm import tqdm

    from core.audio import AudioError, load_audio, probe_audio, save_audio
    from pipelines.inference.engine import with_melody_checks
    from pipelines.inference.engine_loader import load_engine

    options = _options(args)
    engine = load_engine(args.engine, args.model_dir, args.device)
    batch_size = max(1, min(args.batch_size, engine.max_batch_size))
    durations: list[tuple[float, Path]] = []
    for path in todo:  # header only: sorting by length needs no decoding
        try:
            durations.append((probe_audio(path).duration or 0.0, path))
        except AudioError as error:
            summary.failed.append((path, error.problem))
    durations.sort()
    with tqdm(total=len(durations), unit="file", disable=args.quiet) as bar:
        for start in range(0, len(durations), batch_size):
            paths, vocals = [], []
            for _duration, path in durations[start : start + batch_size]:
                try:
                    vocals.append(load_audio(path))
                    paths.append(path)
                except AudioError as error:
                    summary.failed.append((path, error.problem))
                    bar.update()
            if not vocals:
                continue
            results = with_melody_checks(vocals, engine.accompany_batch(vocals, [options] * len(vocals)))
            for path, takes in zip(paths, results, strict=True):
                melody = takes[0].melody
                summary.check_melody(path, melody.coverage if melody else None, melody.warnings if melody else ())
                targets = _outputs(args, path)
                for take in takes:
                    save_audio(targets["mix", take.take], take.mix, take.sample_rate, format=args.format)
                    save_audio(
                        targets["accompaniment", take.take], take.accompaniment, take.sample_rate, format=args.format
                    )
                summary.done += 1
                bar.update()


# ----------------------------------------------------------------------------------------------- remote
def run_remote(args: argparse.Namespace, todo: list[Path], summary: BatchSummary) -> None:
    import httpx
    from tqdm import tqdm

    headers = {"Authorization": f"Bearer {args.api_key}"} if args.api_key else {}
    fields = {"temperature": str(args.temperature), "takes": str(args.takes), "format": args.format}
    if args.seed is not None:
        fields["seed"] = str(args.seed)
    pending: deque[Path] = deque(todo)
    in_flight: dict[str, Path] = {}
    wait_until = 0.0  # set from Retry-After
    with (
        httpx.Client(base_url=args.server.rstrip("/"), headers=headers, timeout=120) as client,
        tqdm(total=len(todo), unit="file", disable=args.quiet) as bar,
    ):
        while pending or in_flight:
            while pending and len(in_flight) < max(1, args.parallel) and time.monotonic() >= wait_until:
                path = pending[0]
                with path.open("rb") as fh:
                    r = client.post("/v1/jobs", files={"audio": (path.name, fh)}, data=fields)
                if r.status_code in (429, 503):
                    wait_until = time.monotonic() + _retry_after(r)
                    break
                pending.popleft()
                if r.status_code == 202:
                    in_flight[r.json()["id"]] = path
                else:
                    _fail(summary, bar, path, r)
            progressed = False
            for job_id, path in list(in_flight.items()):
                r = client.get(f"/v1/jobs/{job_id}")
                if r.status_code == 429:
                    time.sleep(_retry_after(r))
                    break
                job = r.json() if r.status_code == 200 else {"status": "failed", "error": _detail(r)}
                if job["status"] in ("queued", "running"):
                    continue
                del in_flight[job_id]
                progressed = True
                if job["status"] == "succeeded":
                    summary.check_melody(path, job.get("melody_coverage"), job.get("warnings") or ())
                    _download(client, job_id, _outputs(args, path))
                    client.delete(f"/v1/jobs/{job_id}")  # the server's copy is no longer needed
                    summary.done += 1
                    bar.update()
                else:
                    summary.failed.append((path, job.get("error") or job["status"]))
                    bar.update()
            if in_flight and not progressed:
                time.sleep(0.2)
            elif not in_flight and pending:
                time.sleep(max(0.0, wait_until - time.monotonic()))


def _download(client: httpx.Client, job_id: str, targets: dict[tuple[str, int], Path]) -> None:
    for (kind, take), target in targets.items():
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as fh, client.stream("GET", f"/v1/jobs/{job_id}/{kind}?take={take}") as r:
                r.raise_for_status()
                for chunk in r.iter_bytes():
                    fh.write(chunk)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def _retry_after(response: httpx.Response) -> float:
    try:
        return min(60.0, max(0.5, float(response.headers.get("retry-after", "1"))))
    except ValueError:
        return 1.0


def _detail(response: httpx.Response) -> str:
    try:
        return str(response.json().get("detail"))
    except ValueError:
        return f"HTTP {response.status_code}"


def _fail(summary: BatchSummary, bar: tqdm, path: Path, response: httpx.Response) -> None:
    summary.failed.append((path, f"HTTP {response.status_code}: {_detail(response)}"))
    bar.update()
