"""Rendering symbolic parts to audio with a General MIDI soundfont, one part at a time.

Each `Part` is played alone through an SF2 synthesiser (tinysoundfont, a self-contained C renderer: no
audio device, no FluidSynth library needed), so every stem is exactly the sum of its parts and the mixture
is exactly the sum of its stems. Placement in the stereo field (constant-power pan) and a small synthetic
room reverb are applied per part/stem afterwards, which keeps that additivity.

Soundfont search order: an explicit path, `$SINGSONG_SOUNDFONT`, Debian's `fluid-soundfont-gm`
(FluidR3_GM, 142 MB, noticeably better sound) when installed, and finally `TimGM6mb.sf2` (6 MB) which
ships inside pretty_midi and is therefore always available.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import scipy.signal

from core.errors import SingsongError
from pipelines.corpus.song import Part

SYSTEM_SOUNDFONTS = (
    Path("/usr/share/sounds/sf2/FluidR3_GM.sf2"),
    Path("/usr/share/sounds/sf3/MuseScore_General.sf3"),
)
DRUM_BANK = 128


class SoundfontError(SingsongError):
    """No usable soundfont, or the renderer is not installed."""


def bundled_soundfont() -> Path:
    """pretty_midi's TimGM6mb.sf2: a small GM soundfont present wherever pretty_midi is installed."""
    import pretty_midi

    return Path(pretty_midi.__file__).parent / "TimGM6mb.sf2"


def find_soundfont(explicit: str | Path | None = None) -> Path:
    """The soundfont to render with (see the module docstring for the search order)."""
    if explicit is not None:
        path = Path(explicit)
        if not path.is_file():
            raise SoundfontError(f"{path}: soundfont file does not exist")
        return path
    env = os.environ.get("SINGSONG_SOUNDFONT")
    if env:
        return find_soundfont(env)
    for candidate in (*SYSTEM_SOUNDFONTS, bundled_soundfont()):
        if candidate.is_file():
            return candidate
    raise SoundfontError("no General MIDI soundfont found; pass --soundfont PATH or set SINGSONG_SOUNDFONT")


def pan_gains(pan: float) -> tuple[float, float]:
    """Constant-power panning law: equal loudness anywhere from hard left (-1) to hard right (+1)."""
    angle = (np.clip(pan, -1.0, 1.0) + 1.0) * np.pi / 4.0
    return float(np.cos(angle)), float(np.sin(angle))


class PartRenderer:
    """Renders `Part`s to stereo float32 arrays `[2, T]` with one loaded soundfont.

    The soundfont file is read once; every part then gets a fresh synthesiser parsed from those bytes
    (~20 ms for TimGM6mb). Reusing one synthesiser is not deterministic: some voice state survives
    `sounds_off`/`reset`, so the same part rendered twice would differ, and a song's audio would depend on
    what the worker rendered before it.
    """

    def __init__(self, soundfont: str | Path | None = None, sample_rate: int = 44100) -> None:
        try:
            import tinysoundfont
        except ImportError as error:  # pragma: no cover - depends on the installation
            raise SoundfontError(
                "tinysoundfont is not installed; run `pip install --no-deps tinysoundfont` (scripts/setup.sh does)"
            ) from error
        self.soundfont = find_soundfont(soundfont)
        self.sample_rate = sample_rate
        self._tinysoundfont = tinysoundfont
        self._data = self.soundfont.read_bytes()
        self._new_synth()  # fail early on a file that is not a soundfont

    def _new_synth(self) -> tuple[Any, int]:
        synth = self._tinysoundfont.Synth(samplerate=self.sample_rate)
        try:
            sfid = synth.sfload(self._data)
        except Exception as error:
            raise SoundfontError(f"{self.soundfont}: cannot load soundfont ({error})") from error
        return synth, sfid

    def render(self, part: Part, duration: float) -> np.ndarray:
        """Play `part` alone for `duration` seconds -> `[2, round(duration * sample_rate)]` float32.

        Events are applied at sample accuracy by rendering the span between consecutive events; notes still
        sounding at `duration` are cut (their release tail would belong to audio we do not produce).
        """
        num_samples = round(duration * self.sample_rate)
        synth, sfid = self._new_synth()
        channel = 9 if part.is_drum else 0
        synth.program_select(
            channel, sfid, DRUM_BANK if part.is_drum else 0, 0 if part.is_drum else part.program, part.is_drum
        )
        events: list[tuple[int, int, int, int]] = []  # (sample, order, pitch, velocity); note-offs sort first
        for note in part.notes:
            start = round(note.start * self.sample_rate)
            end = round(note.end * self.sample_rate)
            if start >= num_samples:
                continue
            events.append((start, 1, note.pitch, note.velocity))
            events.append((min(end, num_samples), 0, note.pitch, 0))
        events.sort()
        buffer = bytearray(num_samples * 2 * 4)
        view = memoryview(buffer)
        position = 0
        for sample, is_on, pitch, velocity in events:
            if sample > position:
                synth.generate_simple(sample - position, buffer=view[position * 8 : sample * 8])
                position = sample
            if is_on:
                synth.noteon(channel, pitch, velocity)
            else:
                synth.noteoff(channel, pitch)
        if position < num_samples:
            synth.generate_simple(num_samples - position, buffer=view[position * 8 :])
        stereo = np.frombuffer(buffer, dtype=np.float32).reshape(num_samples, 2).T.copy()
        left, right = pan_gains(part.pan)
        stereo[0] *= left * np.sqrt(2.0)  # sqrt(2): a centred part keeps its original level
        stereo[1] *= right * np.sqrt(2.0)
        return stereo * np.float32(10.0 ** (part.gain_db / 20.0))


def room_impulse_response(
    sample_rate: int, rng: np.random.Generator, rt60: float = 0.6, predelay: float = 0.012
) -> np.ndarray:
    """A synthetic stereo room response `[2, N]`: decorrelated noise with an exponential decay.

    Decay time rt60 (seconds to -60 dB); high frequencies decay faster (a low-pass that closes over time),
    as air and wall absorption make them do in real rooms. Normalised to unit energy per channel.
    """
    length = int(rt60 * sample_rate)
    t = np.arange(length) / sample_rate
    envelope = np.exp(-6.9078 * t / rt60)  # ln(1000): -60 dB at rt60
    noise = rng.standard_normal((2, length)) * envelope
    # Two bands: the upper one decays twice as fast, a cheap stand-in for frequency-dependent absorption.
    sos = scipy.signal.butter(2, 3000, btype="low", fs=sample_rate, output="sos")
    low = scipy.signal.sosfilt(sos, noise, axis=-1)
    high = (noise - low) * np.exp(-6.9078 * t / (rt60 / 2.0))
    response = np.concatenate([np.zeros((2, int(predelay * sample_rate))), low + high], axis=-1)
    response /= np.sqrt((response**2).sum(axis=-1, keepdims=True)) + 1e-12
    return response.astype(np.float32)


def apply_reverb(stereo: np.ndarray, response: np.ndarray, wet: float) -> np.ndarray:
    """`[2, T]` dry signal plus `wet` times its convolution with `response` `[2, N]`, cut to T samples."""
    if wet <= 0:
        return stereo
    reverberated = scipy.signal.fftconvolve(stereo, response, axes=-1)[:, : stereo.shape[-1]]
    return (stereo + wet * reverberated).astype(np.float32)
