import numpy as np
import pytest

from pipelines.corpus.render import PartRenderer, SoundfontError, apply_reverb, find_soundfont, room_impulse_response
from pipelines.corpus.song import Note, Part

SR = 22050


@pytest.fixture(scope="module")
def renderer():
    return PartRenderer(sample_rate=SR)


def _part(**kwargs):
    notes = [Note(60 + i % 5, 0.25 * i, 0.25 * i + 0.2, 100) for i in range(6)]
    return Part(name="piano", stem="other", program=0, is_drum=False, notes=notes, **kwargs)


def test_render_length_determinism_and_silence_after_notes(renderer):
    part = _part()
    first = renderer.render(part, 3.0)
    assert first.shape == (2, 3 * SR) and first.dtype == np.float32
    assert np.array_equal(first, renderer.render(part, 3.0)), "same part twice must give identical audio"
    assert np.abs(first[:, : int(1.5 * SR)]).max() > 0.01
    assert np.abs(first[:, int(2.8 * SR) :]).max() < 1e-3, "nothing sounds long after the last note-off"


def test_pan_and_gain(renderer):
    centre = renderer.render(_part(), 2.0)
    left = renderer.render(_part(pan=-1.0), 2.0)
    quiet = renderer.render(_part(gain_db=-6.0), 2.0)
    assert np.abs(left[1]).max() < 1e-6 < np.abs(left[0]).max()
    assert np.sqrt((quiet**2).mean()) / np.sqrt((centre**2).mean()) == pytest.approx(10 ** (-6 / 20), rel=1e-3)


def test_drum_parts_use_the_percussion_bank(renderer):
    kick = Part(name="drums", stem="drums", program=0, is_drum=True, notes=[Note(36, 0.0, 0.1, 120)])
    hat = Part(name="drums", stem="drums", program=0, is_drum=True, notes=[Note(42, 0.0, 0.1, 120)])
    k, h = (np.abs(np.fft.rfft(renderer.render(p, 0.5)[0])) for p in (kick, hat))
    freqs = np.fft.rfftfreq(int(0.5 * SR), 1 / SR)
    centroid = [float((s * freqs).sum() / s.sum()) for s in (k, h)]
    assert 2 * centroid[0] < centroid[1], f"kick should be darker than the hi-hat, got {centroid}"


def test_reverb_adds_a_decaying_tail():
    rng = np.random.default_rng(0)
    response = room_impulse_response(SR, rng, rt60=0.5)
    click = np.zeros((2, SR), np.float32)
    click[:, 100] = 1.0
    wet = apply_reverb(click, response, 0.3)
    assert wet.shape == click.shape
    early, late = (np.abs(wet[:, a:b]).max() for a, b in ((1000, 3000), (int(0.45 * SR), int(0.6 * SR))))
    assert early > late * 10 > 0


def test_missing_soundfont_is_reported(tmp_path):
    with pytest.raises(SoundfontError, match="does not exist"):
        find_soundfont(tmp_path / "none.sf2")
    (tmp_path / "bad.sf2").write_bytes(b"not a soundfont")
    with pytest.raises(SoundfontError, match="cannot load"):
        PartRenderer(tmp_path / "bad.sf2")
