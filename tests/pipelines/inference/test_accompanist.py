"""The accompaniment engine end to end with tiny, randomly initialised models of every part."""

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from core.audio import Audio, load_audio
from core.cli import main
from models.cascade import StageLM, StreamInfo, TransformerConfig, build_cascade, build_stage_config
from models.codec import build_codec, get_preset
from models.melody import MelodyTokenizer
from models.semantic.features import BuiltinFeatureExtractor
from models.semantic.kmeans import KMeansConfig
from models.semantic.tokenizer import fit_semantic_tokenizer
from pipelines.inference.accompanist import Accompanist
from pipelines.inference.engine import GenerationOptions
from pipelines.inference.model_dir import ModelDirectoryError, ModelManifest, write_manifest


def _tone(seconds: float, sample_rate: int, channels: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    melody = 220 * 2 ** (np.floor(t * 2) % 5 / 12)  # a few notes, two per second
    wave = 0.3 * np.sin(2 * np.pi * np.cumsum(melody) / sample_rate) * (np.sin(np.pi * t * 2) ** 2)
    return np.tile(wave.astype(np.float32), (channels, 1))


def _make_model(directory, featurization_streams=("vocals.melody",)):
    torch.manual_seed(0)
    # 8 kHz with a hop of 160 samples: 50 Hz frames, like the real codec, so generation stays short.
    codec = build_codec(get_preset("tiny", encoder_strides=(4, 5, 8))).eval()
    # Untrained EMA codebooks are all zeros (every code decodes to the same audio) until k-means runs.
    codec.init_codebooks(torch.from_numpy(_tone(4.0, 8000))[None] * torch.linspace(0.2, 1.0, 4)[:, None, None])
    codec.save_pretrained(directory / "codec")
    extractor = BuiltinFeatureExtractor()
    features = extractor.extract(torch.from_numpy(_tone(4.0, 16000))[None])[0]
    semantic, _ = fit_semantic_tokenizer(extractor, [features], kmeans=KMeansConfig(k=8, seed=0))
    semantic.save(directory / "semantic")
    melody = MelodyTokenizer()
    streams = {
        "vocals.melody": StreamInfo("vocals.melody", 1, melody.cardinality, melody.frame_rate),
        "vocals.semantic": StreamInfo("vocals.semantic", 1, semantic.cardinality, semantic.frame_rate),
        "instrumental.semantic": StreamInfo("instrumental.semantic", 1, semantic.cardinality, semantic.frame_rate),
        "vocals.coarse": StreamInfo("vocals.coarse", codec.num_coarse_levels, codec.cardinality, codec.frame_rate),
        "instrumental.coarse": StreamInfo(
            "instrumental.coarse", codec.num_coarse_levels, codec.cardinality, codec.frame_rate
        ),
        "instrumental.fine": StreamInfo(
            "instrumental.fine", codec.num_codebooks - codec.num_coarse_levels, codec.cardinality, codec.frame_rate
        ),
    }
    small = TransformerConfig(d_model=32, num_layers=2, num_heads=2)
    for stage in ("semantic", "delay"):
        config = build_stage_config(stage, streams, featurization_streams, transformer=small, window_seconds=2.0)
        StageLM(config).eval().save_pretrained(directory / f"stage_{stage}")
    cascade = build_cascade(
        directory / "cascade", semantic=directory / "stage_semantic", delay=directory / "stage_delay"
    )
    write_manifest(directory, ModelManifest(featurization=cascade.featurization, vocal_noise_snr_db=20.0))
    return directory


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return _make_model(tmp_path_factory.mktemp("model"))


def test_outputs_match_the_vocal_and_seeds_reproduce(model_dir):
    engine = Accompanist.from_pretrained(model_dir)
    stereo = Audio(_tone(2.5, 22050, channels=2), 22050)
    mono = Audio(_tone(1.3, 16000), 16000)
    progress = []
    results = engine.accompany_batch(
        [stereo, mono], [GenerationOptions(seed=3, takes=2), GenerationOptions(seed=9)], progress=progress.append
    )
    assert [len(takes) for takes in results] == [2, 1]
    for vocal, takes in zip((stereo, mono), results, strict=True):
        for take in takes:
            assert take.sample_rate == vocal.sample_rate
            assert take.mix.shape == vocal.samples.shape == take.accompaniment.shape
            assert np.isfinite(take.mix).all() and np.abs(take.mix).max() <= 10 ** (-1 / 20) + 1e-6
    assert [t.seed for t in results[0]] == [3, 4]
    assert not np.array_equal(results[0][0].accompaniment, results[0][1].accompaniment), "takes differ"
    assert progress[-1] == 1.0 and progress == sorted(progress)
    # The same seed gives the same take, whatever else is in the batch (the tokens are identical; batched
    # convolutions in the codec decoder round differently in the last bits).
    again = engine.accompany(stereo, GenerationOptions(seed=3))
    np.testing.assert_allclose(again[0].accompaniment, results[0][0].accompaniment, atol=1e-5)


def test_long_input_gives_exact_length(model_dir):
    engine = Accompanist.from_pretrained(model_dir)
    vocal = Audio(_tone(5.3, 16000), 16000)  # several 2 s generation windows
    take = engine.accompany(vocal, GenerationOptions(seed=1))[0]
    assert take.accompaniment.shape == vocal.samples.shape


def test_mismatched_parts_are_refused_with_a_clear_message(model_dir, tmp_path):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(model_dir, broken)
    other = build_codec(get_preset("tiny", encoder_strides=(4, 5, 8), codebook_size=32)).eval()
    other.init_codebooks(torch.from_numpy(_tone(8.0, 8000))[None])
    shutil.rmtree(broken / "codec")
    other.save_pretrained(broken / "codec")
    with pytest.raises(ModelDirectoryError, match="vocabulary size: cascade trained with 16, tokenizer has 32"):
        Accompanist.from_pretrained(broken)
    manifest = json.loads((broken / "singsong.json").read_text())
    manifest["featurization"] = "S"
    (broken / "singsong.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelDirectoryError, match="featurization"):
        Accompanist.from_pretrained(broken)
    with pytest.raises(ModelDirectoryError, match="not a singsong model"):
        Accompanist.from_pretrained(tmp_path)


def test_accompany_cli_writes_song_and_stems(model_dir, tmp_path, capsys):
    sf.write(tmp_path / "vocal.wav", _tone(1.5, 16000)[0], 16000)
    code = main(
        [
            "accompany",
            str(tmp_path / "vocal.wav"),
            "-o",
            str(tmp_path / "song.flac"),
            "--model",
            str(model_dir),
            "--seed",
            "5",
            "--takes",
            "2",
            "--stems",
            str(tmp_path / "stems"),
        ]
    )
    assert code == 0
    for name in ("song-take1.flac", "song-take2.flac", "stems/accompaniment-take1.wav", "stems/vocals.wav"):
        info = sf.info(tmp_path / name)
        assert info.samplerate == 16000 and info.frames == 24000
    out, err = capsys.readouterr()
    assert "seed 5" in out
    assert f"{tmp_path / 'vocal.wav'}: melody coverage 0.79" in out and "warning" not in err  # held notes
    assert (
        main(["accompany", str(tmp_path / "missing.wav"), "-o", str(tmp_path / "x.wav"), "--model", str(model_dir)])
        == 2
    )
    assert "missing.wav" in capsys.readouterr().err


def test_accompany_cli_warns_when_the_vocal_is_speech(model_dir, tmp_path, capsys):
    speech = load_audio(Path(__file__).resolve().parents[2] / "fixtures" / "speech" / "espeak-en-gb-f3.opus")
    sf.write(tmp_path / "talk.wav", speech.samples[0, : 2 * speech.sample_rate], speech.sample_rate)
    code = main(["accompany", str(tmp_path / "talk.wav"), "-o", str(tmp_path / "song.wav"), "--model", str(model_dir)])
    assert code == 0 and (tmp_path / "song.wav").is_file()  # accompanied all the same, but not silently
    out, err = capsys.readouterr()
    assert f"{tmp_path / 'talk.wav'}: melody coverage 0.00" in out
    assert f"warning: {tmp_path / 'talk.wav'}: little or no sung melody: " in err


def test_assemble_command_writes_a_complete_model_directory(model_dir, tmp_path, capsys):
    out = tmp_path / "assembled"
    code = main(
        [
            "train",
            "cascade-assemble",
            "--semantic",
            str(model_dir / "stage_semantic"),
            "--delay",
            str(model_dir / "stage_delay"),
            "--codec",
            str(model_dir / "codec"),
            "--out",
            str(out),
        ]
    )
    assert code == 0, capsys.readouterr().err
    assert "is complete" in capsys.readouterr().out
    assert {p.name for p in out.iterdir()} == {"codec", "cascade", "singsong.json"}
    engine = Accompanist.from_pretrained(out)  # M featurisation needs no semantic tokenizer at inference
    take = engine.accompany(Audio(_tone(1.0, 16000), 16000), GenerationOptions(seed=2))[0]
    assert take.accompaniment.shape == (1, 16000)


def test_vocal_acoustic_tokens_get_noise_only_when_training_read_noisy_ones(tmp_path):
    engine = Accompanist.from_pretrained(_make_model(tmp_path / "sa", ("vocals.semantic", "vocals.coarse")))
    assert engine.cascade.featurization == "SA"
    clean_engine = Accompanist(engine.cascade, engine.codec, engine.semantic, vocal_noise_snr_db=None)
    vocal = Audio(_tone(1.5, 16000), 16000)
    clean = clean_engine.featurize([vocal], [0])["vocals.coarse"]
    assert torch.equal(engine.featurize([vocal], [0])["vocals.coarse"], clean)  # no note: trained on clean ones
    for stage in engine.cascade.stages.values():
        note = {"stream": "vocals.coarse_noisy", "probability": 1.0}
        stage.training_notes = {"condition_noise": {"vocals.coarse": note}}
    noisy = engine.featurize([vocal], [0])["vocals.coarse"]
    assert noisy.shape == clean.shape and not torch.equal(noisy, clean)


def test_generation_runs_on_one_thread_and_restores_the_setting(model_dir, monkeypatch):
    engine = Accompanist.from_pretrained(model_dir)
    seen = []
    original = engine.cascade.generate

    def spy(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return original(*args, **kwargs)

    monkeypatch.setattr(engine.cascade, "generate", spy)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        engine.accompany_batch([Audio(_tone(0.5, 16000), 16000)], [GenerationOptions(seed=1)])
        assert seen == [1] and torch.get_num_threads() == 2
        engine.generation_threads = None  # leave torch's setting alone
        engine.accompany_batch([Audio(_tone(0.5, 16000), 16000)], [GenerationOptions(seed=1)])
        assert seen == [1, 2]
    finally:
        torch.set_num_threads(before)


def test_generation_threads_follow_the_decoding_unless_set(model_dir):
    """ "auto": one thread for token-by-token stages, torch's setting when every stage decodes whole windows."""
    from types import SimpleNamespace

    engine = Accompanist.from_pretrained(model_dir)
    assert engine.generation_threads == 1  # this tiny model's stages are autoregressive
    parallel = SimpleNamespace(decodes_in_parallel=True)
    assert Accompanist(parallel, engine.codec, engine.semantic).generation_threads is None
    assert Accompanist(parallel, engine.codec, engine.semantic, generation_threads=2).generation_threads == 2


def test_unset_sampling_takes_the_models_recommendation(model_dir, tmp_path):
    """A request that leaves sampling unset gets the model's `sampling` (singsong.json), one that sets it wins."""
    import shutil

    from pipelines.inference.engine import DEFAULT_SAMPLING

    assert GenerationOptions().with_defaults() == GenerationOptions(**DEFAULT_SAMPLING)
    assert GenerationOptions(top_k=5).with_defaults({"top_k": 50, "guidance_scale": 3.0}).top_k == 5
    recommended = tmp_path / "model"
    shutil.copytree(model_dir, recommended)
    manifest = json.loads((recommended / "singsong.json").read_text())
    (recommended / "singsong.json").write_text(json.dumps({**manifest, "sampling": {"guidance_scale": 3.0}}))
    engine = Accompanist.from_pretrained(recommended)
    assert engine.recommended_sampling == {"guidance_scale": 3.0}
    vocal = Audio(_tone(1.0, 16000), 16000)
    unset = engine.accompany(vocal, GenerationOptions(seed=4))[0].accompaniment
    explicit = engine.accompany(vocal, GenerationOptions(seed=4, guidance_scale=3.0))[0].accompaniment
    plain = engine.accompany(vocal, GenerationOptions(seed=4, guidance_scale=1.0))[0].accompaniment
    np.testing.assert_allclose(unset, explicit, atol=1e-6)
    assert not np.allclose(unset, plain)
    (recommended / "singsong.json").write_text(json.dumps({**manifest, "sampling": {"beam": 3}}))
    with pytest.raises(ModelDirectoryError, match="sampling"):
        Accompanist.from_pretrained(recommended)
