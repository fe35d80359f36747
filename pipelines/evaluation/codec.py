"""`singsong eval codec`: reconstruction quality and codebook usage of a trained codec on held-out audio.

For every file (the `test` split by default) the codec encodes the audio once and decodes it twice: from
the first `num_coarse_levels` RVQ levels only (what SingSong's coarse stage produces) and from all levels.
Reported per decode and averaged over files:

* `mel_distance`: the multi-scale log-mel L1 of the training loss (`loss/mel`), so it can be compared with
  the TensorBoard curves; lower is better;
* `si_snr_db`: scale-invariant signal-to-noise ratio (Le Roux et al., 2019, "SDR - half-baked or well
  done?"), per channel; higher is better. Codecs trained on spectral losses do not preserve phase, so this
  is low (often < 5 dB) even when the audio sounds close;

and per RVQ level, over all files: `perplexity` (exp of the entropy of the code distribution; the
codebook size at best) and `used_fraction` (share of the codebook that occurs at all).

Writes `REPORT_DIR/report.json`, `REPORT_DIR/spectrograms.png` (input vs coarse vs full log-mel of the
first file) and the first file's input/coarse/full audio under `REPORT_DIR/examples/`.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


@dataclass
class CodecEvalOptions:
    model: Path
    data: Path
    out: Path
    split: str | None = "test"
    stem: str | None = None
    max_files: int | None = None
    max_seconds: float | None = 30.0  # evaluate at most this much of each file (from its start)
    device: str = "auto"
    chunk_seconds: float | None = 30.0
    progress: bool = True


def si_snr(estimate: Any, reference: Any, eps: float = 1e-8) -> Any:
    """Scale-invariant SNR in dB of `[..., T]` signals, per leading index (zero-mean, projection on reference)."""
    estimate = estimate - estimate.mean(-1, keepdim=True)
    reference = reference - reference.mean(-1, keepdim=True)
    scale = (estimate * reference).sum(-1, keepdim=True) / (reference.pow(2).sum(-1, keepdim=True) + eps)
    target = scale * reference
    noise = estimate - target
    return 10 * ((target.pow(2).sum(-1) + eps) / (noise.pow(2).sum(-1) + eps)).log10()


def evaluate_codec(options: CodecEvalOptions) -> dict[str, Any]:
    """Run the evaluation; returns the report (also written to `out/report.json`)."""
    import torch
    from tqdm import tqdm

    from core.audio import load_audio, save_audio
    from core.device import resolve_device
    from models.codec import load_codec
    from models.codec.losses import MultiResolutionSpectralLoss
    from models.codec.quantizer import code_counts
    from pipelines.training.codec import training_files

    started = time.monotonic()
    device = resolve_device(options.device)
    codec = load_codec(options.model, device=device)
    spectral = MultiResolutionSpectralLoss(sample_rate=codec.sample_rate).to(device)
    files = training_files(Path(options.data), options.stem, options.split)
    if options.max_files:
        files = files[: options.max_files]
    out = Path(options.out)
    out.mkdir(parents=True, exist_ok=True)
    coarse_levels = codec.num_coarse_levels
    decodes = {"coarse": coarse_levels, "full": codec.num_codebooks}
    counts = torch.zeros(codec.num_codebooks, codec.cardinality, dtype=torch.long)
    per_file: list[dict[str, Any]] = []
    total_seconds = 0.0
    figure_data = None
    for index, path in enumerate(tqdm(files, desc="eval codec", unit="file", disable=not options.progress)):
        audio = load_audio(path, sample_rate=codec.sample_rate, channels=codec.channels)
        samples = audio.samples
        if options.max_seconds:
            samples = samples[:, : int(options.max_seconds * codec.sample_rate)]
        wav = torch.from_numpy(samples).to(device)[None]  # [1, C, T]
        length = wav.shape[-1]
        total_seconds += length / codec.sample_rate
        codes = codec.encode(wav, chunk_seconds=options.chunk_seconds)
        counts += code_counts(codes, codec.cardinality).cpu()
        entry: dict[str, Any] = {"path": str(path), "seconds": round(length / codec.sample_rate, 3)}
        reconstructions = {}
        for name, levels in decodes.items():
            recon = codec.decode(codes[:, :levels], chunk_seconds=options.chunk_seconds)[..., :length]
            reconstructions[name] = recon
            with torch.no_grad():
                mel = float(spectral(recon, wav)["loss/mel"])
            entry[name] = {"mel_distance": mel, "si_snr_db": float(si_snr(recon, wav).mean())}
        per_file.append(entry)
        if index == 0:
            figure_data = (wav, reconstructions)
            examples = out / "examples"
            examples.mkdir(exist_ok=True)
            save_audio(examples / "input.wav", samples, codec.sample_rate)
            for name, recon in reconstructions.items():
                clipped = recon[0].clamp(-1, 1).cpu().numpy()
                save_audio(examples / f"{name}.wav", clipped, codec.sample_rate)

    elapsed = time.monotonic() - started
    report: dict[str, Any] = {
        "model": str(options.model),
        "data": str(options.data),
        "split": options.split,
        "stem": options.stem,
        "num_files": len(per_file),
        "audio_seconds": round(total_seconds, 3),
        "codec": {
            "sample_rate": codec.sample_rate,
            "channels": codec.channels,
            "frame_rate": codec.frame_rate,
            "num_levels": codec.num_codebooks,
            "num_coarse_levels": coarse_levels,
            "codebook_size": codec.cardinality,
            "parameters": codec.num_parameters(),
        },
    }
    bits_per_level = codec.frame_rate * torch.tensor(float(codec.cardinality)).log2().item()
    for name, levels in decodes.items():
        report[name] = {
            "levels": levels,
            "bitrate_kbps": round(levels * bits_per_level / 1000, 3),
            "mel_distance": sum(f[name]["mel_distance"] for f in per_file) / len(per_file),
            "si_snr_db": sum(f[name]["si_snr_db"] for f in per_file) / len(per_file),
        }
    probs = counts.float() / counts.sum(-1, keepdim=True).clamp_min(1)
    perplexity = (-(probs * probs.clamp_min(1e-12).log()).sum(-1)).exp()
    report["codebooks"] = [
        {
            "level": level,
            "coarse": level < coarse_levels,
            "perplexity": float(perplexity[level]),
            "used_fraction": float((counts[level] > 0).float().mean()),
        }
        for level in range(codec.num_codebooks)
    ]
    report["files"] = per_file
    if figure_data is not None:
        report["figure"] = "spectrograms.png"
        plot_spectrograms(out / "spectrograms.png", spectral, *figure_data, report=report)
    report["elapsed_seconds"] = round(time.monotonic() - started, 2)
    report["real_time_factor"] = round(elapsed / max(total_seconds, 1e-9), 4)
    (out / "report.json").write_text(json.dumps(report, indent=2))
    return report


def plot_spectrograms(
    path: Path,
    spectral: Any,
    wav: Any,
    reconstructions: dict[str, Any],
    *,
    report: dict[str, Any],
    n_fft: int = 1024,
    max_seconds: float = 10.0,
) -> None:
    """Input / coarse / full log-mel spectrograms of one file (first channel, first `max_seconds`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    if n_fft not in spectral.fft_sizes:
        n_fft = spectral.fft_sizes[-1]
    sample_rate = report["codec"]["sample_rate"]
    limit = int(max_seconds * sample_rate)
    panels = [("input", wav), *reconstructions.items()]
    fig, axes = plt.subplots(len(panels), 1, figsize=(10, 2.6 * len(panels)), sharex=True, squeeze=False)
    seconds = min(wav.shape[-1], limit) / sample_rate
    with torch.no_grad():
        mels = [
            spectral.log_mel(spectral.magnitude(signal[:1, :1, :limit], n_fft), n_fft)[0].cpu().numpy()
            for _, signal in panels
        ]
    # one colour scale for all panels (the input's range), so levels can be compared by eye
    vmin, vmax = float(mels[0].min()), float(mels[0].max())
    for axis, (name, _), mel in zip(axes[:, 0], panels, mels, strict=True):
        image = axis.imshow(
            mel,
            origin="lower",
            aspect="auto",
            extent=(0, seconds, 0, mel.shape[0]),
            cmap="magma",
            vmin=vmin,
            vmax=vmax,
        )
        title = name
        if name in report:
            summary = report[name]
            title += (
                f" ({summary['levels']} levels, {summary['bitrate_kbps']:g} kbps): mel distance "
                f"{summary['mel_distance']:.3f}, SI-SNR {summary['si_snr_db']:.1f} dB"
            )
        axis.set_title(title, fontsize=9)
        axis.set_ylabel("mel band")
        fig.colorbar(image, ax=axis, pad=0.01)
    axes[-1, 0].set_xlabel("seconds")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _run(args: argparse.Namespace) -> int:
    report = evaluate_codec(
        CodecEvalOptions(
            model=Path(args.model),
            data=Path(args.data),
            out=Path(args.out),
            split=None if args.split in ("", "all") else args.split,
            stem=args.stem,
            max_files=args.max_files,
            max_seconds=args.max_seconds or None,
            device=args.device,
        )
    )
    for name in ("coarse", "full"):
        summary = report[name]
        print(
            f"{name:6s} {summary['levels']} levels {summary['bitrate_kbps']:6.2f} kbps  "
            f"mel distance {summary['mel_distance']:.3f}  SI-SNR {summary['si_snr_db']:6.2f} dB"
        )
    usage = ", ".join(f"{c['perplexity']:.0f}/{c['used_fraction']:.0%}" for c in report["codebooks"])
    print(f"codebook perplexity/used per level: {usage}")
    print(f"report: {Path(args.out) / 'report.json'}")
    return 0


def register(groups: dict[str, argparse._SubParsersAction]) -> None:
    """Add `singsong eval codec`."""
    parser = groups["eval"].add_parser(
        "codec",
        help="measure codec reconstruction (mel distance, SI-SNR) and codebook usage",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--model", required=True, help="codec checkpoint directory (or training run dir)")
    parser.add_argument("--data", required=True, help="audio folder, corpus folder or manifest .jsonl")
    parser.add_argument("--out", required=True, help="report directory")
    parser.add_argument("--split", default="test", help="manifest split ('all' for every file)")
    parser.add_argument("--stem", default=None, help="manifest stem, e.g. mixture")
    parser.add_argument("--max-files", type=int, default=None)
    parser.add_argument("--max-seconds", type=float, default=30.0, help="seconds per file (0: all)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.set_defaults(handler=_run)
