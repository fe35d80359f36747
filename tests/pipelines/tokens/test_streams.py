"""Stream names parse into their parts, print back unchanged, and refuse anything off the protocol."""

from __future__ import annotations

import pytest

from pipelines.tokens.cache import default_streams
from pipelines.tokens.streams import StreamName, StreamNameError


def test_names_parse_and_print_back() -> None:
    noisy = StreamName.parse("vocals.semantic_noisy")
    assert (noisy.source, noisy.kind, noisy.noisy, noisy.tokenizer) == ("vocals", "semantic", True, "semantic")
    assert str(noisy.clean) == "vocals.semantic" and str(noisy.clean.noisy_twin) == "vocals.semantic_noisy"
    fine = StreamName.parse("instrumental.fine")
    assert fine.tokenizer == "codec" and fine.acoustic and not fine.noisy
    assert not StreamName.parse("vocals.melody").acoustic
    for spec in default_streams(3):  # every stream the cache writes round-trips, with its source/tokenizer
        parsed = StreamName.parse(spec.name)
        assert (str(parsed), parsed.source, parsed.tokenizer) == (spec.name, spec.source, spec.tokenizer)
        assert parsed.noisy == (spec.noise_snr_db is not None)


@pytest.mark.parametrize("name", ["vocals", "vocal.semantic", "vocals.pitch", "vocals.semantic_clean", ".coarse"])
def test_names_off_the_protocol_are_refused_with_the_rule(name: str) -> None:
    with pytest.raises(StreamNameError, match=r"SOURCE\.KIND"):
        StreamName.parse(name)
