"""`singsong tokens build`: encode a corpus of pairs into a token cache."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from core.errors import SingsongError

if TYPE_CHECKING:
    from pipelines.tokens.cache import StreamSpec


def register(groups: dict[str, argparse._SubParsersAction]) -> None:
    build = groups["tokens"].add_parser(
        "build",
        help="encode vocal/instrumental pairs into memory-mapped token arrays (resumable)",
        description="Encode every pair of a pairs manifest or a stem corpus with the semantic tokenizer and the "
        "codec. Rerunning continues where an interrupted run stopped.",
    )
    build.add_argument("--data", required=True, help="pairs manifest (.jsonl) or corpus folder with manifest.jsonl")
    build.add_argument(
        "--codec", default=None, help="codec directory (ours or a transformers EnCodec); needed for codec streams"
    )
    build.add_argument("--semantic", required=True, help="semantic tokenizer directory")
    build.add_argument("--out", required=True, help="cache directory")
    build.add_argument("--splits", default=None, help="comma-separated splits to encode (default: all)")
    build.add_argument(
        "--coarse-levels",
        type=int,
        default=None,
        help="codec levels that count as coarse (default: the codec's own setting)",
    )
    build.add_argument(
        "--vocal-noise-snr",
        type=float,
        default=20.0,
        help="SNR (dB) of the white noise added for the vocals.semantic_noisy stream (default 20)",
    )
    build.add_argument(
        "--streams",
        default=None,
        help="comma-separated streams to build (default: all the cascade reads); e.g. "
        "vocals.melody,vocals.melody_noisy,instrumental.semantic for a semantic stage, without a codec",
    )
    build.add_argument("--device", default="cpu")
    build.add_argument("--quiet", action="store_true", help="no progress bar")
    build.set_defaults(handler=_build)


def select_streams(streams: list[StreamSpec], names: str | None) -> list[StreamSpec]:
    """The streams named in `names` (comma-separated; None: all of them), in their default order."""
    if not names:
        return streams
    wanted = [name.strip() for name in names.split(",") if name.strip()]
    known = {spec.name for spec in streams}
    unknown = [name for name in wanted if name not in known]
    if unknown:
        raise SingsongError(f"--streams: unknown stream(s) {', '.join(unknown)} (choose from {', '.join(known)})")
    return [spec for spec in streams if spec.name in wanted]


def _build(args: argparse.Namespace) -> int:
    from models.loading import load_tokenizer
    from pipelines.tokens.cache import (
        TokenCacheWriter,
        build_token_cache,
        default_streams,
        existing_streams,
        pair_sources,
        tokenizer_fingerprint,
    )

    items = pair_sources(args.data, splits=args.splits.split(",") if args.splits else None)
    semantic = load_tokenizer(args.semantic, device=args.device)
    codec = load_tokenizer(args.codec, device=args.device) if args.codec else None
    coarse = 3 if codec is None else getattr(codec, "num_coarse_levels", None) or min(3, codec.num_codebooks)
    streams = select_streams(default_streams(args.coarse_levels or coarse, args.vocal_noise_snr), args.streams)
    if codec is None and any(spec.tokenizer == "codec" for spec in streams):
        raise SingsongError(
            "--codec is needed for the codec streams; pass --streams without them to build semantic/melody only"
        )
    resumed = existing_streams(args.out)
    if resumed is not None:
        added = sorted({s.name for s in streams} - {s.name for s in resumed})
        if added:
            print(
                f"{args.out}: continuing the existing cache with its own streams (not adding {', '.join(added)}; "
                "build a new cache to get them)"
            )
        streams = resumed
    writer = TokenCacheWriter(
        args.out,
        semantic=semantic,
        codec=codec,
        streams=streams,
        fingerprints={
            "semantic": tokenizer_fingerprint(semantic, args.semantic),
            **({"codec": tokenizer_fingerprint(codec, args.codec)} if codec is not None else {}),
        },
        device=args.device,
    )
    summary = build_token_cache(writer, items, progress=not args.quiet)
    print(
        f"{args.out}: encoded {summary.encoded}, skipped {summary.skipped} already cached, "
        f"failed {summary.failed} (see log); {len(writer.done)} items in the cache"
    )
    return 1 if summary.failed and not summary.encoded and not summary.skipped else 0
