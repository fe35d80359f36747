"""The spectral codec (log-mel ConvNeXt + RVQ + Griffin-Lim): shapes, coarse decode, determinism, persistence,
loading by contents, pitch through the fixed front end and Griffin-Lim, and input errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from core.errors import SingsongError
from models.checkpoint import CheckpointError
from models.codec.config import CodecConfigError
from models.codec.phase import griffin_lim, peak_phase
from models.codec.spectral import SpectralCodec, build_spectral_codec, load_spectral_codec
from models.codec.spectral_config import SpectralCodecConfig, get_spectral_preset
from models.loading import load_tokenizer
from tests.models.codec.signals import tone


@pytest.fixture(scope="module")
def tiny() -> SpectralCodec:
    torch.manual_seed(0)
    codec = build_spectral_codec(get_spectral_preset("tiny"))
    mel = codec.log_mel(tone(1.0, codec.sample_rate, batch=3))
    codec.calibrate(mel)
    codec.init_codebooks(mel)
    return codec.eval()


def test_round_trip_shapes_and_lengths(tiny: SpectralCodec) -> None:
    assert tiny.frame_rate == 8000 / (80 * 2) and tiny.num_codebooks == 2 and tiny.cardinality == 16
    wav = tone(0.73, tiny.sample_rate, batch=2)  # not a whole number of code frames
    codes = tiny.encode(wav)
    frames = math.ceil(wav.shape[-1] / tiny.hop_length)
    assert codes.shape == (2, 2, frames) == (2, 2, tiny.num_frames(wav.shape[-1])) and codes.dtype == torch.long
    assert int(codes.min()) >= 0 and int(codes.max()) < 16
    audio = tiny.decode(codes)
    assert audio.shape == (2, 1, frames * tiny.hop_length) and torch.isfinite(audio).all()
    assert float(audio.abs().max()) > 1e-3  # not silence


def test_coarse_decode_uses_fewer_levels_and_differs(tiny: SpectralCodec) -> None:
    codes = tiny.encode(tone(0.5, tiny.sample_rate))
    coarse, full = tiny.decode_log_mel(codes[:, :1]), tiny.decode_log_mel(codes)
    assert coarse.shape == full.shape and not torch.allclose(coarse, full)
    assert tiny.decode(codes[:, :1]).shape == tiny.decode(codes).shape
    assert torch.equal(tiny.encode(tone(0.5, tiny.sample_rate), num_levels=1), codes[:, :1])


def test_encode_and_decode_are_deterministic(tiny: SpectralCodec) -> None:
    wav = tone(0.5, tiny.sample_rate, seed=4)
    codes = tiny.encode(wav)
    assert torch.equal(codes, tiny.encode(wav))
    assert torch.equal(tiny.decode(codes), tiny.decode(codes))


def test_save_load_and_loading_by_contents(tiny: SpectralCodec, tmp_path) -> None:
    tiny.save_pretrained(tmp_path / "codec")
    loaded = load_tokenizer(tmp_path / "codec")
    assert isinstance(loaded, SpectralCodec) and loaded.config == tiny.config
    wav = tone(0.5, tiny.sample_rate, seed=5)
    assert torch.equal(loaded.encode(wav), tiny.encode(wav))
    assert torch.equal(loaded.decode(tiny.encode(wav)), tiny.decode(tiny.encode(wav)))
    with pytest.raises(CheckpointError, match="spectral_codec"):
        from models.codec import load_codec

        load_codec(tmp_path / "codec")  # the SEANet loader refuses it by kind
    with pytest.raises(CheckpointError):
        load_spectral_codec(tmp_path / "missing")


def test_input_errors_name_the_problem(tiny: SpectralCodec) -> None:
    wav = tone(0.25, tiny.sample_rate)
    with pytest.raises(SingsongError, match="8000 Hz audio, got 44100 Hz"):
        tiny.encode(wav, sample_rate=44_100)
    with pytest.raises(SingsongError, match="mono"):
        tiny.encode(wav.repeat(1, 2, 1))
    with pytest.raises(SingsongError, match="mono"):
        tiny.encode(wav[0])
    with pytest.raises(SingsongError, match="empty"):
        tiny.encode(wav[..., :0])
    codes = tiny.encode(wav)
    with pytest.raises(SingsongError, match="K'"):
        tiny.decode(torch.cat([codes, codes], dim=1))
    with pytest.raises(SingsongError, match=r"\[0, 16\)"):
        tiny.decode(codes + 16)
    with pytest.raises(CodecConfigError, match="mono"):
        SpectralCodecConfig(channels=2)
    with pytest.raises(CodecConfigError, match="unknown"):
        SpectralCodecConfig.from_dict({"bogus": 1})


def _chord_progression(sample_rate: int, seconds_per_chord: float = 1.0) -> tuple[torch.Tensor, list[set[int]]]:
    """C major, A minor, F major, G major triads (with octave doublings and a bass root) -> `[1, 1, T]`."""
    chords = [(48, [60, 64, 67]), (45, [57, 60, 64]), (41, [53, 57, 60]), (43, [55, 59, 62])]
    t = torch.arange(int(seconds_per_chord * sample_rate)) / sample_rate
    pieces, classes = [], []
    for bass, notes in chords:
        x = torch.zeros_like(t)
        for midi in [bass, *notes]:
            f = 440.0 * 2 ** ((midi - 69) / 12)
            x += sum(0.1 / h * torch.sin(2 * math.pi * h * f * t) for h in (1, 2, 3))
        pieces.append(x * torch.hann_window(len(t), periodic=False) ** 0.1)
        classes.append({n % 12 for n in notes})
    return torch.cat(pieces)[None, None] * 0.5, classes


def _top_pitch_classes(audio: np.ndarray, sample_rate: int, seconds_per_chord: float, count: int = 3) -> list[set]:
    from pipelines.evaluation.fit import chromagram

    chroma = chromagram(audio, sample_rate)
    per_chord = round(seconds_per_chord * chroma.shape[1] / (len(audio) / sample_rate))
    tops = []
    for start in range(0, chroma.shape[1] - per_chord + 1, per_chord):
        middle = chroma[:, start + per_chord // 4 : start + 3 * per_chord // 4].mean(axis=1)
        tops.append(set(np.argsort(middle)[-count:].tolist()))
    return tops


def test_chord_progression_keeps_its_pitch_classes_through_mel_and_griffin_lim() -> None:
    """The shipped front end (256 bands, n_fft 2048) + NNLS + Griffin-Lim keeps each chord's three notes."""
    codec = build_spectral_codec(get_spectral_preset("small")).eval()
    wav, classes = _chord_progression(codec.sample_rate)
    log_mel = codec.log_mel(wav)
    audio = codec.vocode(log_mel)[0, 0].numpy()
    assert _top_pitch_classes(wav[0, 0].numpy(), codec.sample_rate, 1.0) == classes  # the probe itself works
    assert _top_pitch_classes(audio, codec.sample_rate, 1.0) == classes
    # negative control: 128 bands of the same STFT blur the low chord tones
    coarse = build_spectral_codec(get_spectral_preset("small", n_mels=32)).eval()
    blurred = coarse.vocode(coarse.log_mel(wav))[0, 0].numpy()
    assert _top_pitch_classes(blurred, codec.sample_rate, 1.0) != classes


def test_griffin_lim_reconstructs_a_consistent_magnitude() -> None:
    wav = tone(0.5, 8000, batch=2, seed=6)[:, 0]
    window = torch.hann_window(256)
    magnitude = torch.stft(wav, 256, 64, window=window, return_complex=True).abs()
    errors = []
    for iterations in (0, 32):
        audio = griffin_lim(magnitude, n_fft=256, hop_length=64, iterations=iterations, length=wav.shape[-1])
        rebuilt = torch.stft(audio, 256, 64, window=window, return_complex=True).abs()
        errors.append(float((rebuilt - magnitude).norm() / magnitude.norm()))
    assert errors[1] < 0.2 < errors[0]  # iterations make the magnitude consistent
    with pytest.raises(ValueError, match="magnitude"):
        griffin_lim(magnitude[:, :10], n_fft=256, hop_length=64)


def test_peak_phase_advances_like_a_sinusoid_between_the_bins() -> None:
    """A tone between two bins: the start phase advances per frame as the true STFT phase does at its peak."""
    rate, n_fft, hop = 8000, 256, 64
    frequency = 17.3 * rate / n_fft  # 0.3 bin above bin 17
    time = torch.arange(rate) / rate
    spectrum = torch.stft(
        torch.sin(2 * torch.pi * frequency * time)[None],
        n_fft,
        hop,
        window=torch.hann_window(n_fft),
        return_complex=True,
    )
    phase = peak_phase(spectrum.abs(), n_fft=n_fft, hop_length=hop)
    frames = slice(4, -4)  # away from the padded edges
    for bin_ in (16, 17, 18):  # the peak and the bins on either side of it
        true_step = spectrum[0, bin_, 1:].angle() - spectrum[0, bin_, :-1].angle()
        step = phase[0, bin_, 1:] - phase[0, bin_, :-1]
        wrapped = torch.remainder(step - true_step + torch.pi, 2 * torch.pi) - torch.pi
        assert wrapped[frames].abs().max() < 0.05
        # a whole-bin estimate (bin 17 exactly) would be off by 2 pi * 0.3 * hop / n_fft = 0.47 rad per frame


def test_griffin_lim_from_peaks_is_more_consistent_than_from_noise() -> None:
    """After the same few iterations, the phase-vocoder start rebuilds a chord's magnitude more closely."""
    codec = build_spectral_codec(get_spectral_preset("small")).eval()
    wav, _ = _chord_progression(codec.sample_rate)
    window = torch.hann_window(2048)
    magnitude = torch.stft(wav[:, 0], 2048, 480, window=window, return_complex=True).abs()
    errors = {}
    for init in ("random", "peaks"):
        audio = griffin_lim(magnitude, n_fft=2048, hop_length=480, iterations=4, init=init, length=wav.shape[-1])
        rebuilt = torch.stft(audio, 2048, 480, window=window, return_complex=True).abs()
        errors[init] = float((rebuilt - magnitude).norm() / magnitude.norm())
    assert errors["peaks"] < 0.7 * errors["random"]
    with pytest.raises(ValueError, match="init"):
        griffin_lim(magnitude, n_fft=2048, hop_length=480, init="zeros")
    with pytest.raises(CodecConfigError, match="griffin_lim_init"):
        get_spectral_preset("small", griffin_lim_init="zeros")


def test_inference_only_export_is_smaller_and_decodes_alike(tiny: SpectralCodec, tmp_path) -> None:
    tiny.save_pretrained(tmp_path / "full")
    tiny.save_pretrained(tmp_path / "slim", inference_only=True)
    full, slim = (tmp_path / name / "model.safetensors" for name in ("full", "slim"))
    assert slim.stat().st_size < 0.6 * full.stat().st_size
    loaded = load_spectral_codec(tmp_path / "slim")
    wav = tone(0.5, tiny.sample_rate, seed=7)
    codes = tiny.encode(wav)
    assert (loaded.encode(wav) == codes).float().mean() > 0.9  # float16 weights: rare ties may flip
    torch.testing.assert_close(loaded.decode_log_mel(codes), tiny.decode_log_mel(codes), atol=0.05, rtol=0.01)
    (tmp_path / "bad").mkdir()
    tiny.save_pretrained(tmp_path / "bad")
    from models.checkpoint import load_checkpoint, save_checkpoint

    broken = load_checkpoint(tmp_path / "bad")
    del broken.tensors["decoder.out.weight"]
    save_checkpoint(tmp_path / "bad", kind=broken.kind, config=broken.config, tensors=broken.tensors)
    with pytest.raises(CheckpointError, match="do not match"):
        load_spectral_codec(tmp_path / "bad")


def test_chroma_matrix_folds_tones_onto_their_pitch_class() -> None:
    """The chroma loss's folding: a note's log-mel profile peaks at its own pitch class from C3 to F#6.

    Below ~200 Hz a mel band is wider than a semitone, so a bass note's energy splits over the neighbouring
    classes; its profile still peaks within a semitone (the loss compares like with like: truth and
    prediction go through the same folding).
    """
    from pipelines.training.spectral_codec import pitch_profile

    codec = build_spectral_codec(get_spectral_preset("small")).eval()
    chroma = codec.mel.chroma_matrix()
    t = torch.arange(codec.sample_rate) / codec.sample_rate
    for midi in (40, 45, 48, 52, 60, 67, 71, 78, 90):
        f = 440.0 * 2 ** ((midi - 69) / 12)
        wav = sum(0.3 / h * torch.sin(2 * math.pi * h * f * t) for h in (1, 2, 3))[None, None]
        profile = pitch_profile(codec.log_mel(wav), chroma, codec.mel.log_floor)[0, :, 10]
        error = (int(profile.argmax()) - midi) % 12
        assert error == 0 if midi >= 48 else error in (0, 1, 11), midi
        assert float(profile.sum()) == pytest.approx(1.0, abs=0.05)
    silence = pitch_profile(codec.log_mel(torch.zeros(1, 1, 4800)), chroma, codec.mel.log_floor)
    assert float(silence.abs().max()) == 0.0


def test_band_weights_favour_low_bands_and_keep_the_mean() -> None:
    from pipelines.training.spectral_codec import band_weights

    codec = build_spectral_codec(get_spectral_preset("small")).eval()
    weights = band_weights(codec, 2.0)[:, 0]
    assert weights.shape == (codec.config.n_mels * codec.config.stack,)
    assert float(weights.mean()) == pytest.approx(1.0)
    assert float(weights[0]) == pytest.approx(2 * float(weights[codec.config.n_mels - 1]))
    # the bass factor multiplies bands below 250 Hz on top, tapers out by 500 Hz, and keeps the mean at 1
    centres = codec.mel.band_centres()
    bass = band_weights(codec, 2.0, 4.0)[: codec.config.n_mels, 0]
    assert float(band_weights(codec, 2.0, 4.0).mean()) == pytest.approx(1.0)
    assert float(bass[0]) == pytest.approx(8 * float(bass[-1]))
    middle = (centres > 600) & (centres < 900)
    assert torch.allclose(bass[middle] / bass[-1], weights[: codec.config.n_mels][middle] / weights[-1])


def test_noise_fill_gives_floored_bands_a_low_level_instead_of_silence() -> None:
    silent = build_spectral_codec(get_spectral_preset("tiny")).eval()
    filled = build_spectral_codec(get_spectral_preset("tiny", noise_fill=0.2)).eval()
    floor = torch.full((1, silent.config.n_mels, 20), silent.mel.min_value)
    assert float(silent.mel.to_magnitude(floor).max()) < 1e-5
    level = filled.mel.to_magnitude(floor, noise_fill=0.2)
    assert float(level.mean()) > 0.0
    assert float(filled.vocode(floor).abs().max()) > float(silent.vocode(floor).abs().max())
    with pytest.raises(CodecConfigError, match="noise_fill"):
        get_spectral_preset("tiny", noise_fill=1.5)


def test_high_band_extension_fills_above_fmax_and_leaves_the_rest() -> None:
    """ "slope": the bins above fmax get the band below, scaled by each frame's spectral slope (at most 1)."""
    from models.codec.mel import extend_high_band

    codec = build_spectral_codec(get_spectral_preset("tiny", fmax=2500.0)).eval()
    noise = torch.randn(1, 1, codec.sample_rate, generator=torch.Generator().manual_seed(0)) * 0.3
    log_mel = codec.log_mel(noise)
    top = codec.mel.top_bin
    silent = codec.mel.to_magnitude(log_mel)
    filled = codec.mel.to_magnitude(log_mel, high_band="slope")
    assert float(silent[:, top + 1 :].max()) < 1e-5 < float(filled[:, top + 1 :].mean())
    assert torch.equal(filled[:, : top + 1], silent[:, : top + 1])
    # a spectrum falling by 2x per octave continues to fall: the copy is scaled by 1/2, never raised
    bins = torch.arange(1, 101, dtype=torch.float32)
    falling = (1.0 / bins)[None, :, None].repeat(1, 1, 3)
    extended = extend_high_band(falling, top_bin=80)
    assert extended.shape == falling.shape
    assert torch.allclose(extended[:, 81:], falling[:, 61:80] * 0.5, rtol=0.1)
    rising = falling.flip(1)
    assert torch.allclose(extend_high_band(rising, top_bin=80)[:, 81:], rising[:, 61:80])
    # the decoded audio carries energy above fmax only with the extension
    bright = build_spectral_codec(get_spectral_preset("tiny", fmax=2500.0, high_band="slope")).eval()
    bright.load_state_dict(codec.state_dict())
    spectra = [torch.fft.rfft(c.vocode(log_mel)[0, 0]).abs() for c in (codec, bright)]
    cut = round(2600 * len(spectra[0]) / 4000)
    assert float(spectra[1][cut:].pow(2).sum()) > 10 * float(spectra[0][cut:].pow(2).sum())
    with pytest.raises(CodecConfigError, match="high_band"):
        get_spectral_preset("tiny", high_band="mirror")
    with pytest.raises(CodecConfigError, match="fmax must be >= sample_rate / 4"):
        get_spectral_preset("tiny", fmax=1500.0, high_band="slope")
