"""PNG figures of `singsong eval report`: per-metric bar charts and a chroma picture per example song.

matplotlib with the non-interactive Agg backend (no display on servers). Figures are small (~100 dpi) so a
report folder stays light enough to commit next to the README.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

#: (summary key, axis label, value range or None) of the bar charts, in display order.
BAR_METRICS = (
    ("harmonic_margin", "harmonic support margin", None),
    ("key_compatible", "key compatible (share)", (0.0, 1.0)),
    ("tempo_agrees", "tempo agrees (share)", (0.0, 1.0)),
    ("beat_margin", "beat alignment margin", None),
    ("chroma_similarity", "chroma similarity to truth", (0.0, 1.0)),
    ("frechet", "Fréchet distance to truth", None),
)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def metric_bars(summary: dict[str, dict[str, dict[str, float]]], path: Path) -> Path:
    """`summary[section][row][metric]` -> one bar chart per metric, rows on x, one bar per section."""
    plt = _pyplot()
    sections = list(summary)
    rows = list(dict.fromkeys(row for section in sections for row in summary[section]))
    metrics = [m for m in BAR_METRICS if any(m[0] in v for s in sections for v in summary[s].values())]
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.2 * len(metrics), 3.6), squeeze=False)
    width = 0.8 / max(1, len(sections))
    for axis, (key, label, limits) in zip(axes[0], metrics, strict=True):
        for s, section in enumerate(sections):
            values = [summary[section].get(row, {}).get(key, np.nan) for row in rows]
            axis.bar(np.arange(len(rows)) + (s - (len(sections) - 1) / 2) * width, values, width, label=section)
        axis.set_title(label, fontsize=9)
        axis.set_xticks(np.arange(len(rows)), rows, rotation=45, ha="right", fontsize=8)
        axis.axhline(0.0, color="black", linewidth=0.5)
        if limits:
            axis.set_ylim(*limits)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def example_chroma(
    title: str,
    pitch_classes: np.ndarray,
    frame_rate: float,
    chromas: dict[str, np.ndarray],
    chroma_rate: float,
    path: Path,
) -> Path:
    """The vocal's pitch classes (dots) over each accompaniment's chroma `[12, F]` (normalised per frame)."""
    plt = _pyplot()
    fig, axes = plt.subplots(len(chromas), 1, figsize=(9, 1.6 * len(chromas) + 0.4), sharex=True, squeeze=False)
    times = (np.arange(len(pitch_classes)) + 0.5) / frame_rate
    voiced = pitch_classes >= 0
    for axis, (label, chroma) in zip(axes[:, 0], chromas.items(), strict=True):
        shown = chroma / np.maximum(chroma.max(axis=0, keepdims=True), 1e-9)
        extent = (0.0, chroma.shape[1] / chroma_rate, -0.5, 11.5)
        axis.imshow(shown, origin="lower", aspect="auto", cmap="magma", extent=extent, vmin=0, vmax=1)
        axis.scatter(times[voiced], pitch_classes[voiced], s=3, color="cyan", label="vocal pitch class")
        axis.set_yticks([0, 2, 4, 5, 7, 9, 11], ["C", "D", "E", "F", "G", "A", "B"], fontsize=7)
        axis.set_ylabel(label, fontsize=8, rotation=0, ha="right", va="center")
    axes[0, 0].set_title(title, fontsize=9)
    axes[-1, 0].set_xlabel("seconds")
    fig.tight_layout()
    fig.savefig(path, dpi=72)
    plt.close(fig)
    return path
