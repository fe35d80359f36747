"""`singsong accompany`: generate an accompaniment for a vocal file and write the song (and stems).

Besides the files it prints the vocal's melody coverage, and a warning on stderr when there is little or no
sung melody to follow (`melody_check.py`).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def register(groups: dict[str, argparse._SubParsersAction]) -> None:
    parser = groups["_top"].add_parser(
        "accompany",
        help="generate an accompaniment for a sung vocal and write the mixed song",
        description="Generate an instrumental accompaniment that fits the vocal (key, chords, tempo, groove) and "
        "write the mix; --stems also writes the accompaniment and the vocal as separate files.",
    )
    parser.add_argument("vocals", help="the vocal recording (wav, flac, mp3, ogg, m4a, webm, ...)")
    parser.add_argument("-o", "--output", required=True, help="mixed song (.wav, .flac or .mp3)")
    parser.add_argument("--stems", default=None, help="folder for accompaniment.wav and vocals.wav")
    parser.add_argument(
        "--engine",
        default=os.environ.get("SINGSONG_ENGINE") or "model",
        help="model (the token cascade), retrieval (SingSong's retrieval baseline: a library instrumental "
        "matched in key and tempo) or package.module:factory (default: $SINGSONG_ENGINE or model)",
    )
    parser.add_argument(
        "--model",
        default=os.environ.get("SINGSONG_MODEL"),
        help="model directory, or with --engine retrieval a library folder (default: $SINGSONG_MODEL, else the "
        "shipped model / the bundled library)",
    )
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: random, printed)")
    # Sampling left unset takes the model's recommended values (its singsong.json), else 1.0 / 250 / 0 / 1.0.
    parser.add_argument("--temperature", type=float, default=None, help="default: the model's, else 1.0")
    parser.add_argument("--top-k", type=int, default=None, help="0 = whole vocabulary; default: the model's, else 250")
    parser.add_argument("--top-p", type=float, default=None, help="default: the model's, else 0 (off)")
    parser.add_argument(
        "--guidance-scale", type=float, default=None, help="classifier-free guidance (1 = off); default: the model's"
    )
    parser.add_argument(
        "--plan-candidates",
        type=int,
        default=None,
        help="harmony plans sampled per take, the best-fitting one rendered (1 = plain sampling); default: the model's",
    )
    parser.add_argument(
        "--key-strength",
        type=float,
        default=None,
        help="pull of the vocal's estimated key on the harmony plan (0 = off); default: the model's",
    )
    parser.add_argument("--takes", type=int, default=1, help="independent accompaniments; files get a -takeN suffix")
    parser.add_argument("--device", default="auto", help="cpu, cuda or auto")
    parser.set_defaults(handler=_accompany)


def _device(name: str) -> str:
    if name != "auto":
        return name
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _with_take(path: Path, take: int, takes: int) -> Path:
    return path if takes == 1 else path.with_name(f"{path.stem}-take{take + 1}{path.suffix}")


def _accompany(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from core.audio import load_audio, save_audio
    from core.errors import SingsongError
    from pipelines.inference.engine import GenerationOptions, with_melody_checks
    from pipelines.inference.engine_loader import load_engine

    output = Path(args.output)
    if output.suffix.lower() not in (".wav", ".flac", ".mp3"):
        raise SingsongError(f"{output}: output must end in .wav, .flac or .mp3")
    options = GenerationOptions(
        seed=args.seed,
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        guidance_scale=args.guidance_scale,
        plan_candidates=args.plan_candidates,
        key_strength=args.key_strength,
        takes=args.takes,
    )
    try:
        options.validate()
    except ValueError as error:
        raise SingsongError(str(error)) from error
    vocal = load_audio(args.vocals)
    engine = load_engine(args.engine, args.model, device=_device(args.device))
    with tqdm(total=100, desc="generating", unit="%", bar_format="{l_bar}{bar}| {elapsed}<{remaining}") as bar:

        def progress(fraction: float) -> None:
            bar.update(round(100 * fraction) - bar.n)

        takes = with_melody_checks([vocal], engine.accompany_batch([vocal], [options], progress=progress))[0]
    check = takes[0].melody
    assert check is not None  # with_melody_checks filled it
    print(f"{args.vocals}: melody coverage {check.coverage:.2f}")
    for warning in check.warnings:
        print(f"warning: {args.vocals}: {warning}", file=sys.stderr)
    for take in takes:
        song_path = save_audio(_with_take(output, take.take, len(takes)), take.mix, take.sample_rate)
        print(f"{song_path}: {vocal.duration:.1f} s, seed {take.seed}")
        if args.stems:
            stems = Path(args.stems)
            stem_path = _with_take(stems / "accompaniment.wav", take.take, len(takes))
            save_audio(stem_path, take.accompaniment, take.sample_rate)
            print(f"{stem_path}: accompaniment stem")
    if args.stems:
        save_audio(Path(args.stems) / "vocals.wav", vocal.samples, vocal.sample_rate)
    return 0
