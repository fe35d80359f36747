"""Vowel and consonant formant tables and digital-resonator helpers for the singing synthesiser (`voice.py`).

Formant frequencies are for an adult male voice (vocal tract ~17.5 cm); `VoiceTimbre.formant_scale` scales
them for shorter tracts (women ~1.15-1.2). The values are rounded averages in the spirit of Peterson &
Barney (1952) and of singing-vowel measurements (Sundberg, "The Science of the Singing Voice", 1987), nudged
towards the more open, rounded vowels singers use. Bandwidths follow the usual rule that they grow with the
formant number (wall and radiation losses), roughly as in Klatt (1980).

A formant is realised as Klatt's two-pole digital resonator
    H(z) = (1 + a1 + a2) / (1 + a1 z^-1 + a2 z^-2),
    a1 = -2 r cos(2 pi F / sr),  a2 = r^2,  r = exp(-pi B / sr),
normalised to unit gain at DC so that a cascade reproduces Fant's relative formant levels automatically
(a formant moving down raises everything above it, a cluster of formants makes a strong peak).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

# name -> ((F1..F5), (B1..B5)) in Hz, adult male.
VOWELS: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "a": ((710.0, 1100.0, 2550.0, 3400.0, 4300.0), (80.0, 90.0, 120.0, 180.0, 250.0)),  # "father"
    "e": ((430.0, 1950.0, 2600.0, 3400.0, 4300.0), (60.0, 100.0, 120.0, 180.0, 250.0)),  # "say"
    "i": ((280.0, 2250.0, 2950.0, 3500.0, 4400.0), (50.0, 100.0, 140.0, 200.0, 250.0)),  # "see"
    "o": ((460.0, 820.0, 2600.0, 3300.0, 4200.0), (70.0, 80.0, 120.0, 180.0, 250.0)),  # "go"
    "u": ((310.0, 850.0, 2300.0, 3300.0, 4200.0), (60.0, 80.0, 120.0, 180.0, 250.0)),  # "who"
    "@": ((520.0, 1450.0, 2550.0, 3400.0, 4300.0), (70.0, 90.0, 120.0, 180.0, 250.0)),  # schwa, "sofa"
}
# How often a random note gets each vowel: singers favour open vowels on sustained notes.
VOWEL_WEIGHTS: dict[str, float] = {"a": 0.27, "e": 0.18, "i": 0.13, "o": 0.19, "u": 0.11, "@": 0.12}

ConsonantKind = Literal["sonorant", "voiced_stop", "fricative", "stop"]


@dataclass(frozen=True)
class Consonant:
    """A syllable-initial consonant, as far as a formant synthesiser needs to know it.

    Voiced ones (sonorants, voiced stops) are a dip in the voicing level with their own formant targets
    (loci), so the following vowel starts with a formant transition. Unvoiced ones break the voicing and add
    a noise event: frication in `noise_band`, or for stops a short burst there followed by aspiration.
    """

    kind: ConsonantKind
    loci: tuple[float, float, float]  # F1-F3 targets (Hz, adult male) during the consonant
    bandwidths: tuple[float, float, float]
    dip_db: float  # voiced consonants: level of the murmur relative to the vowel
    noise_band: tuple[float, float] | None  # Hz (adult male); None = shaped by the vowel's formants ("h")
    noise_db: float  # level of the noise relative to the sung level
    weight: float  # relative frequency at note onsets


_WIDE = (150.0, 200.0, 250.0)
CONSONANTS: dict[str, Consonant] = {
    # Nasals: low F1, broad bandwidths (the nasal branch damps the tract), strong level dip.
    "m": Consonant("sonorant", (280.0, 1000.0, 2300.0), _WIDE, -15.0, None, 0.0, 0.10),
    "n": Consonant("sonorant", (280.0, 1600.0, 2600.0), _WIDE, -15.0, None, 0.0, 0.10),
    "l": Consonant("sonorant", (360.0, 1100.0, 2700.0), (90.0, 150.0, 200.0), -8.0, None, 0.0, 0.10),
    "w": Consonant("sonorant", (300.0, 700.0, 2300.0), (80.0, 120.0, 200.0), -7.0, None, 0.0, 0.05),
    "j": Consonant("sonorant", (260.0, 2200.0, 3000.0), (60.0, 150.0, 200.0), -6.0, None, 0.0, 0.04),
    "r": Consonant("sonorant", (350.0, 1150.0, 1650.0), (90.0, 120.0, 150.0), -6.0, None, 0.0, 0.05),
    # Voiced stops: near-silent closure (voice bar) then a weak burst at the release.
    "b": Consonant("voiced_stop", (250.0, 850.0, 2300.0), _WIDE, -28.0, (300.0, 3000.0), -24.0, 0.04),
    "d": Consonant("voiced_stop", (250.0, 1700.0, 2600.0), _WIDE, -28.0, (2000.0, 6000.0), -22.0, 0.06),
    "g": Consonant("voiced_stop", (250.0, 1900.0, 2400.0), _WIDE, -28.0, (1200.0, 3500.0), -22.0, 0.03),
    # Fricatives: turbulence at a constriction; sibilants are loud and high, /f/ weak and flat.
    "s": Consonant("fricative", (300.0, 1750.0, 2700.0), _WIDE, 0.0, (4500.0, 10500.0), -12.0, 0.12),
    "S": Consonant("fricative", (300.0, 1900.0, 2500.0), _WIDE, 0.0, (2200.0, 6500.0), -13.0, 0.04),
    "f": Consonant("fricative", (300.0, 900.0, 2300.0), _WIDE, 0.0, (1200.0, 9000.0), -23.0, 0.05),
    "h": Consonant("fricative", (0.0, 0.0, 0.0), _WIDE, 0.0, None, -19.0, 0.08),
    # Voiceless stops: closure silence, burst, short aspiration.
    "t": Consonant("stop", (300.0, 1800.0, 2700.0), _WIDE, 0.0, (2500.0, 8000.0), -9.0, 0.10),
    "k": Consonant("stop", (300.0, 1900.0, 2400.0), _WIDE, 0.0, (1200.0, 3500.0), -10.0, 0.08),
    "p": Consonant("stop", (250.0, 850.0, 2300.0), _WIDE, 0.0, (300.0, 3000.0), -14.0, 0.06),
}


def resonator_coeffs(
    freq: np.ndarray | float, bw: np.ndarray | float, sample_rate: float
) -> tuple[np.ndarray, np.ndarray]:
    """Denominator coefficients (a1, a2) of Klatt's digital resonator, vectorised over freq/bw."""
    r = np.exp(-np.pi * np.asarray(bw, dtype=np.float64) / sample_rate)
    a1 = -2.0 * r * np.cos(2.0 * np.pi * np.asarray(freq, dtype=np.float64) / sample_rate)
    return a1, r * r


def resonator_sos(freqs: np.ndarray, bws: np.ndarray, sample_rate: float) -> np.ndarray:
    """Second-order sections of a cascade of DC-normalised resonators (for `scipy.signal.sosfilt`)."""
    a1, a2 = resonator_coeffs(np.asarray(freqs), np.asarray(bws), sample_rate)
    sos = np.zeros((len(a1), 6))
    sos[:, 0] = 1.0 + a1 + a2  # unit DC gain
    sos[:, 3] = 1.0
    sos[:, 4] = a1
    sos[:, 5] = a2
    return sos


def tube_formants(formant_scale: float, first: int, max_freq: float) -> tuple[np.ndarray, np.ndarray]:
    """Formants `first`, `first`+1, ... of a uniform 17.5 cm tube (F_n = (2n-1) * 500 Hz) up to `max_freq`.

    The vowel tables stop at F5; without the poles above it a cascade falls off far too steeply above
    ~5 kHz (the "higher-pole correction" problem of Fant and Klatt). Adding the neutral tube's higher
    resonances, with bandwidths that grow with frequency, keeps the envelope's average level about flat.
    """
    n = np.arange(first, 64)
    f = (2 * n - 1) * 500.0 * formant_scale
    f = f[f < max_freq]
    return f, 200.0 + 0.08 * f
