import json

import numpy as np
import pytest
import torch

from core.audio import load_audio
from core.cli import main
from models.codec import build_codec, get_preset
from models.semantic.features import BuiltinFeatureExtractor
from models.semantic.kmeans import KMeansConfig
from models.semantic.tokenizer import fit_semantic_tokenizer
from pipelines.corpus.generate import CorpusSettings, generate_corpus
from pipelines.tokens.cache import (
    TokenCacheError,
    TokenCacheWriter,
    build_token_cache,
    default_streams,
    pair_sources,
    tokenizer_fingerprint,
)
from pipelines.tokens.reader import TokenCache


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("tokens")
    generate_corpus(root / "corpus", CorpusSettings(songs=3, seconds=3.0, seed=5, format="wav"), progress=False)
    codec = build_codec(get_preset("tiny")).eval()
    # Untrained EMA codebooks are empty and get initialised by whatever audio is encoded first, which would
    # make codes depend on the order of encodes: initialise them from the corpus once, as training does.
    first_mixture = next((root / "corpus").glob("*/song_*/mixture.wav"))
    mixture = load_audio(first_mixture, sample_rate=codec.sample_rate, channels=1)
    codec.init_codebooks(torch.from_numpy(mixture.samples)[None])
    codec.save_pretrained(root / "codec")
    extractor = BuiltinFeatureExtractor()
    vocal = load_audio(next((root / "corpus").glob("*/song_*/vocals.wav")), sample_rate=16000, channels=1)
    features = extractor.extract(torch.from_numpy(vocal.samples)[None])[0]
    semantic, _ = fit_semantic_tokenizer(extractor, [features], kmeans=KMeansConfig(k=8, seed=0))
    semantic.save(root / "semantic")
    return root, codec, semantic


def _writer(root, codec, semantic, out):
    return TokenCacheWriter(
        out,
        semantic=semantic,
        codec=codec,
        streams=default_streams(codec.num_coarse_levels),
        fingerprints={
            "codec": tokenizer_fingerprint(codec, root / "codec"),
            "semantic": tokenizer_fingerprint(semantic, root / "semantic"),
        },
    )


def test_cache_holds_every_stream_with_the_right_shapes(setup, tmp_path):
    root, codec, semantic = setup
    items = pair_sources(root / "corpus")
    summary = build_token_cache(_writer(root, codec, semantic, tmp_path), items, progress=False)
    assert summary.encoded == 3
    cache = TokenCache(tmp_path)
    assert len(cache) == 3
    seconds = 3.0
    for i in range(3):
        coarse = cache.tokens(i, "instrumental.coarse")
        fine = cache.tokens(i, "instrumental.fine")
        sem = cache.tokens(i, "instrumental.semantic")
        assert coarse.shape == (1, codec.num_frames(int(seconds * codec.sample_rate)))
        assert fine.shape == (codec.num_codebooks - 1, coarse.shape[1])
        assert sem.shape == (1, semantic.num_frames(int(seconds * 16000)))
        assert cache.tokens(i, "vocals.coarse").shape == coarse.shape
        assert cache.tokens(i, "vocals.melody").shape == sem.shape  # both 25 Hz
        assert int(cache.tokens(i, "vocals.melody").max()) < cache.cardinality("vocals.melody") == 25
        assert int(sem.max()) < semantic.cardinality and int(coarse.max()) < codec.cardinality
    # The cached instrumental codes are what the codec gives for drums + bass + other.
    item = items[0]
    stems = sum(load_audio(p, sample_rate=codec.sample_rate, channels=1).samples for p in item.instrumental)
    expected = codec.encode(torch.from_numpy(stems)[None])[0].numpy()
    index = [it.id for it in cache.items].index(item.id)
    assert np.array_equal(cache.tokens(index, "instrumental.coarse"), expected[:1])
    assert np.array_equal(cache.tokens(index, "instrumental.fine"), expected[1:])
    # Noise changes the vocal semantic tokens somewhere but not everywhere.
    clean, noisy = cache.tokens(index, "vocals.semantic"), cache.tokens(index, "vocals.semantic_noisy")
    assert 0 < np.mean(clean != noisy) < 1
    # ... and so it does to the vocal's coarse acoustic tokens (SingSong's SA featurisation reads noisy ones).
    clean, noisy = cache.tokens(index, "vocals.coarse"), cache.tokens(index, "vocals.coarse_noisy")
    assert clean.shape == noisy.shape and np.mean(clean != noisy) > 0


def test_interrupted_build_resumes_without_duplicates(setup, tmp_path):
    root, codec, semantic = setup
    items = pair_sources(root / "corpus")
    writer = _writer(root, codec, semantic, tmp_path)
    writer.add(items[0])
    # Simulate a crash in the middle of the second item: some rows appended, no index line.
    with (tmp_path / "instrumental.coarse.bin").open("ab") as handle:
        handle.write(b"\x07\x00" * 5)
    resumed = _writer(root, codec, semantic, tmp_path)
    summary = build_token_cache(resumed, items, progress=False)
    assert (summary.encoded, summary.skipped) == (2, 1)
    cache = TokenCache(tmp_path)
    ends = [offset + length for offset, length in (it.frames["instrumental.coarse"] for it in cache.items)]
    assert sorted(ends)[-1] == cache._array("instrumental.coarse").shape[0], "no orphaned rows"
    again = build_token_cache(_writer(root, codec, semantic, tmp_path), items, progress=False)
    assert (again.encoded, again.skipped) == (0, 3)


def test_other_tokenizers_are_refused(setup, tmp_path):
    root, codec, semantic = setup
    build_token_cache(_writer(root, codec, semantic, tmp_path), pair_sources(root / "corpus")[:1], progress=False)
    other = build_codec(get_preset("tiny")).eval()
    other.save_pretrained(tmp_path / "other_codec")
    with pytest.raises(TokenCacheError, match="other tokenizers"):
        TokenCacheWriter(
            tmp_path,
            semantic=semantic,
            codec=other,
            streams=default_streams(1),
            fingerprints={
                "codec": tokenizer_fingerprint(other, tmp_path / "other_codec"),
                "semantic": tokenizer_fingerprint(semantic, root / "semantic"),
            },
        )


def test_pairs_manifest_and_missing_files(setup, tmp_path):
    root, codec, semantic = setup
    song = next((root / "corpus").glob("*/song_*"))
    lines = [
        {"id": "w1", "split": "train", "vocals": str(song / "vocals.wav"), "instrumental": str(song / "other.wav")},
        {"id": "w2", "split": "valid", "vocals": str(tmp_path / "gone.wav"), "instrumental": str(song / "other.wav")},
    ]
    (tmp_path / "pairs.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    items = pair_sources(tmp_path / "pairs.jsonl")
    summary = build_token_cache(_writer(root, codec, semantic, tmp_path / "cache"), items, progress=False)
    assert (summary.encoded, summary.failed) == (1, 1)
    assert [item.split for item in TokenCache(tmp_path / "cache").items] == ["train"]
    assert [i.id for i in pair_sources(tmp_path / "pairs.jsonl", splits=["valid"])] == ["w2"]


def test_cli_builds_a_cache(setup, tmp_path, capsys):
    root, _, _ = setup
    code = main(
        [
            "tokens",
            "build",
            "--data",
            str(root / "corpus"),
            "--codec",
            str(root / "codec"),
            "--semantic",
            str(root / "semantic"),
            "--out",
            str(tmp_path / "c"),
            "--quiet",
        ]
    )
    assert code == 0
    assert "encoded 3" in capsys.readouterr().out
    assert (
        main(
            [
                "tokens",
                "build",
                "--data",
                str(tmp_path / "nope"),
                "--codec",
                str(root / "codec"),
                "--semantic",
                str(root / "semantic"),
                "--out",
                str(tmp_path / "c"),
            ]
        )
        == 2
    )
    assert "manifest does not exist" in capsys.readouterr().err


def test_cli_continues_a_cache_started_with_other_streams(setup, tmp_path, capsys):
    root, codec, semantic = setup
    old_streams = [s for s in default_streams(codec.num_coarse_levels) if s.name != "vocals.coarse_noisy"]
    writer = TokenCacheWriter(
        tmp_path / "c",
        semantic=semantic,
        codec=codec,
        streams=old_streams,
        fingerprints={
            "codec": tokenizer_fingerprint(codec, root / "codec"),
            "semantic": tokenizer_fingerprint(semantic, root / "semantic"),
        },
    )
    items = pair_sources(root / "corpus")
    writer.add(items[0])  # a cache made before vocals.coarse_noisy existed, one song in
    code = main(
        [
            "tokens",
            "build",
            "--data",
            str(root / "corpus"),
            "--codec",
            str(root / "codec"),
            "--semantic",
            str(root / "semantic"),
            "--out",
            str(tmp_path / "c"),
            "--quiet",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0 and "not adding vocals.coarse_noisy" in out and "encoded 2, skipped 1" in out
    cache = TokenCache(tmp_path / "c")
    assert len(cache) == 3 and "vocals.coarse_noisy" not in cache.streams


def test_cli_builds_chosen_streams_without_a_codec(setup, tmp_path, capsys):
    """A semantic stage reads melody + semantic streams only: they can be built before any codec exists."""
    root, _, _ = setup
    chosen = "vocals.melody,vocals.melody_noisy,instrumental.semantic"
    args = ["tokens", "build", "--data", str(root / "corpus"), "--semantic", str(root / "semantic")]
    assert main([*args, "--out", str(tmp_path / "c"), "--streams", chosen, "--quiet"]) == 0
    assert "encoded 3" in capsys.readouterr().out
    cache = TokenCache(tmp_path / "c")
    assert sorted(cache.streams) == sorted(chosen.split(","))
    assert len(cache) == 3 and cache.tokens(0, "instrumental.semantic").shape == (1, 75)  # 3 s at 25 Hz

    assert main([*args, "--out", str(tmp_path / "d")]) == 2  # codec streams by default: a codec is needed
    assert "--codec is needed" in capsys.readouterr().err
    assert main([*args, "--out", str(tmp_path / "e"), "--streams", "vocals.melody,nope"]) == 2
    assert "unknown stream(s) nope" in capsys.readouterr().err
