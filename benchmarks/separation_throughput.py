"""Throughput of the separation pipeline vs `python -m demucs`: same model, same files, same threads.

* **demucs**: `python -m demucs --repo R -n NAME --two-stems vocals --segment S --overlap O --shifts K`
  over the track list (one process, one track at a time, chunks one by one: demucs' own CLI).
* **ours**: `singsong pipeline separate` (segments of several tracks batched into one forward, decoding and
  FLAC encoding in background threads) *followed by* `singsong pipeline pairs` (10 s windows, vocal-activity
  filter, loudness normalisation, window files + manifest): the ratio includes segmentation and filtering.

Both run as fresh subprocesses with `OMP_NUM_THREADS`/`MKL_NUM_THREADS` = `--threads` (our command also gets
`--threads`); process start-up and model loading count for both. On a shared machine the two take turns
`--repeats` times and the medians are compared. Throughput = seconds of audio / wall seconds; the reported
ratio is ours / demucs (>= 1 means we are at least as fast). CPU seconds (user + sys of the child) are
reported too: on a loaded machine they are the steadier figure.

Without `--repo`, a small random-weight HDemucs (channels 8, depth 5, 44.1 kHz, as `train separator`
builds) is saved into a temporary repository: speed does not depend on the weights, nothing is downloaded.
As a sanity check the vocals of both systems are compared (SDR of ours against demucs'; with `--shifts 0`
they agree up to the last chunk of each track, demucs pads that one differently).

    .venv/bin/python benchmarks/separation_throughput.py --input /tmp/synth --tracks 12 [--repo R --name N]
        [--threads 2] [--segment 10] [--shifts 1] [--batch-size 8] [--repeats 1] [--report out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CLI_RUNNER = "import sys; from core.cli import main; sys.exit(main())"


def timed(cmd: list[str], env: dict[str, str], log: Path) -> tuple[float, float]:
    """Run `cmd`; (wall seconds, CPU seconds of the child). Raises with the log tail if it fails."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    with log.open("w") as handle:
        code = subprocess.call(cmd, env=env, stdout=handle, stderr=subprocess.STDOUT, cwd=ROOT)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if code != 0:
        raise SystemExit(f"{' '.join(cmd[:4])} ... failed ({code}):\n{log.read_text()[-3000:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def build_default_model(repo: Path) -> str:
    import torch

    from pipelines.separation.repo import build_model, export_to_repo

    torch.manual_seed(0)
    model = build_model("hdemucs", channels=8, depth=5, sample_rate=44100, segment=10.0)
    export_to_repo(model, repo, "bench")
    return "bench"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", required=True, help="corpus folder/manifest or folder of mixtures")
    parser.add_argument("--tracks", type=int, default=12)
    parser.add_argument("--repo", default=None)
    parser.add_argument("--name", default=None)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--segment", type=int, default=10, help="seconds (an integer: demucs' CLI wants one)")
    parser.add_argument("--overlap", type=float, default=0.25)
    parser.add_argument("--shifts", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--work", default=None, help="scratch folder (default: a temporary one)")
    parser.add_argument("--report", default=None, help="write the figures as JSON here")
    args = parser.parse_args()

    from core.audio import load_audio, probe_audio
    from pipelines.separation.metrics import sdr
    from pipelines.separation.tracks import list_tracks

    work = Path(args.work or tempfile.mkdtemp(prefix="sep-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    repo = Path(args.repo) if args.repo else work / "repo"
    name = args.name or build_default_model(repo)
    # The same files for both, under unique flat names (demucs names its outputs after the file name).
    tracks = list_tracks(args.input)[: args.tracks]
    inputs = work / "inputs"
    inputs.mkdir(exist_ok=True)
    files = []
    for job in tracks:
        link = inputs / (job.key.replace("/", "__") + job.path.suffix)
        if not link.exists():
            link.symlink_to(job.path)
        files.append(link)
    audio_seconds = sum(probe_audio(f).duration or 0.0 for f in files)

    env = {
        **os.environ,
        "OMP_NUM_THREADS": str(args.threads),
        "MKL_NUM_THREADS": str(args.threads),
        "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": str(ROOT),
    }
    common = ["--segment", str(args.segment), "--overlap", str(args.overlap), "--shifts", str(args.shifts)]
    results: dict[str, list[tuple[float, float]]] = {"demucs": [], "ours": [], "ours_separate": [], "ours_pairs": []}
    for repeat in range(args.repeats):
        out_d, out_s, out_p = work / f"demucs{repeat}", work / f"sep{repeat}", work / f"pairs{repeat}"
        demucs_cmd = [
            sys.executable,
            "-m",
            "demucs",
            "--repo",
            str(repo),
            "-n",
            name,
            "--two-stems",
            "vocals",
            *common,
            "-o",
            str(out_d),
            *map(str, files),
        ]
        separate_cmd = [
            sys.executable,
            "-c",
            CLI_RUNNER,
            "pipeline",
            "separate",
            "--input",
            str(inputs),
            "--out",
            str(out_s),
            "--repo",
            str(repo),
            "--model",
            name,
            *common,
            "--batch-size",
            str(args.batch_size),
            "--threads",
            str(args.threads),
            "--quiet",
        ]
        pairs_cmd = [
            sys.executable,
            "-c",
            CLI_RUNNER,
            "pipeline",
            "pairs",
            "--input",
            str(out_s),
            "--out",
            str(out_p),
            "--quiet",
        ]
        order = ["demucs", "ours"] if repeat % 2 == 0 else ["ours", "demucs"]
        for system in order:
            if system == "demucs":
                results["demucs"].append(timed(demucs_cmd, env, work / f"demucs{repeat}.log"))
            else:
                sep = timed(separate_cmd, env, work / f"separate{repeat}.log")
                pairs = timed(pairs_cmd, env, work / f"pairs{repeat}.log")
                results["ours_separate"].append(sep)
                results["ours_pairs"].append(pairs)
                results["ours"].append((sep[0] + pairs[0], sep[1] + pairs[1]))
            print(f"repeat {repeat}: {system} {results[system][-1][0]:.1f} s wall", flush=True)

    # Agreement of the two systems' vocals (last repeat).
    agreement = []
    for link in files:
        theirs = out_d / name / link.stem / "vocals.wav"
        ours = out_s / link.stem / "vocals.flac"
        if theirs.is_file() and ours.is_file():
            a, b = load_audio(theirs).samples, load_audio(ours).samples
            n = min(a.shape[-1], b.shape[-1])
            agreement.append(sdr(a[:, :n], b[:, :n]))
    windows = sum(1 for _ in (out_p / "manifest.jsonl").open()) if (out_p / "manifest.jsonl").is_file() else 0

    def med(system: str, index: int) -> float:
        return statistics.median(r[index] for r in results[system])

    figures = {
        "tracks": len(files),
        "audio_seconds": round(audio_seconds, 1),
        "threads": args.threads,
        "segment": args.segment,
        "overlap": args.overlap,
        "shifts": args.shifts,
        "batch_size": args.batch_size,
        "repeats": args.repeats,
        "model": name,
        "repo": str(repo),
        **{f"{s}_wall_s": round(med(s, 0), 2) for s in results},
        **{f"{s}_cpu_s": round(med(s, 1), 2) for s in results},
        "demucs_x_realtime": round(audio_seconds / med("demucs", 0), 2),
        "ours_x_realtime": round(audio_seconds / med("ours", 0), 2),
        "throughput_ratio": round(med("demucs", 0) / med("ours", 0), 3),
        "cpu_ratio": round(med("demucs", 1) / med("ours", 1), 3),
        "vocals_agreement_sdr_db": round(statistics.median(agreement), 2) if agreement else None,
        "pair_windows": windows,
    }
    print(json.dumps(figures, indent=2))
    print(
        f"\nthroughput ours/demucs = {figures['throughput_ratio']:.2f}x (wall, separation + pairs vs separation "
        f"only); CPU-time ratio {figures['cpu_ratio']:.2f}x"
    )
    if args.report:
        Path(args.report).write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
