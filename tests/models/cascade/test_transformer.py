import pytest
import torch

from models.cascade.transformer import MultiStreamEmbedding, Transformer, TransformerConfig

from .conftest import TINY


@pytest.mark.parametrize("config", [TINY, TransformerConfig(32, 2, 4, num_kv_heads=1)], ids=["mha", "gqa"])
def test_incremental_decoding_with_the_kv_cache_matches_the_full_forward(config):
    torch.manual_seed(0)
    model = Transformer(config).eval()
    x = torch.randn(3, 12, config.d_model)
    positions = torch.tensor([0.0, 2, 4, 6, 0, 1, 2, 3, 4, 5, 6, 7])  # two streams at different rates
    full = model(x, positions)
    cache = model.new_cache(3, 16)
    pieces = [model(x[:, :5], positions[:5], cache), model(x[:, 5:9], positions[5:9], cache)]  # prefill + chunk
    pieces += [model(x[:, i : i + 1], positions[i : i + 1], cache) for i in range(9, 12)]  # single steps
    assert cache.length == 12
    assert torch.allclose(torch.cat(pieces, dim=1), full, atol=1e-5)
    cache.reset()  # a reset cache is reused without stale entries leaking in
    assert torch.allclose(model(x[:, :4], positions[:4], cache), full[:, :4], atol=1e-5)
    assert cache.keys[0].shape == (3, config.kv_heads, 16, config.head_dim)


@pytest.mark.parametrize("config", [TINY, TransformerConfig(32, 2, 4, num_kv_heads=1)], ids=["mha", "gqa"])
def test_the_functional_decoding_step_matches_forward_with_the_cache(config):
    torch.manual_seed(0)
    model = Transformer(config).eval()
    x = torch.randn(2, 9, config.d_model)
    positions = torch.tensor([0.0, 2, 4, 0, 1, 2, 3, 4, 5])
    rotation = model.rotary(positions)
    reference, fast = model.new_cache(2, 9), model.new_cache(2, 9)
    with torch.inference_mode():
        model(x[:, :6], cache=reference, rotation=rotation[:6])
        model(x[:, :6], cache=fast, rotation=rotation[:6])
        for i in range(6, 9):
            expected = model(x[:, i : i + 1], cache=reference, rotation=rotation[i : i + 1])
            got = model.step(x[:, i : i + 1], fast, rotation[i : i + 1])
            assert torch.allclose(got, expected, atol=1e-6)
        assert fast.length == reference.length == 9
        for layer in range(config.num_layers):
            assert torch.allclose(fast.keys[layer], reference.keys[layer], atol=1e-6)
            assert torch.allclose(fast.values[layer], reference.values[layer], atol=1e-6)
        with pytest.raises(ValueError, match="full"):
            model.step(x[:, :1], fast, rotation[:1])
        with pytest.raises(ValueError, match="one position"):
            model.step(x[:, :2], fast, rotation[:2])


def test_rotary_attention_depends_on_position_differences_only():
    """Shifting every position (a later window, a longer prefix) leaves the outputs unchanged."""
    torch.manual_seed(0)
    model = Transformer(TINY).eval()
    x = torch.randn(2, 6, TINY.d_model)
    positions = torch.tensor([0.0, 2, 4, 0, 1, 2])
    assert torch.allclose(model(x, positions), model(x, positions + 37.5), atol=1e-4)
    assert not torch.allclose(model(x, positions), model(x, positions * 2), atol=1e-4)


def test_attention_is_causal():
    torch.manual_seed(0)
    model = Transformer(TINY).eval()
    x = torch.randn(1, 8, TINY.d_model)
    changed = x.clone()
    changed[:, 5:] += 1.0
    positions = torch.arange(8.0)
    assert torch.allclose(model(x, positions)[:, :5], model(changed, positions)[:, :5], atol=1e-6)
    assert not torch.allclose(model(x, positions)[:, 5:], model(changed, positions)[:, 5:])


def test_multi_stream_embedding_sums_one_embedding_per_codebook():
    embedding = MultiStreamEmbedding(3, 5, 4, extra=1)
    tokens = torch.tensor([[[0, 5], [1, 2], [4, 4]]])  # [B=1, K=3, T=2]; 5 is the extra (null) id
    table = embedding.table.weight
    expected = torch.stack([table[0] + table[6 + 1] + table[12 + 4], table[5] + table[6 + 2] + table[12 + 4]])
    assert torch.allclose(embedding(tokens)[0], expected)
