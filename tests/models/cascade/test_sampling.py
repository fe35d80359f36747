import pytest
import torch

from models.cascade.sampling import Sampler, SamplingConfig, filter_logits, guide, top_k_filter, top_p_filter


def test_top_k_keeps_the_k_largest():
    logits = torch.tensor([[1.0, 5.0, 3.0, 4.0, 2.0]])
    kept = torch.isfinite(top_k_filter(logits, 2))
    assert kept.tolist() == [[False, True, False, True, False]]
    assert torch.equal(top_k_filter(logits, 0), logits)


def test_top_p_keeps_the_smallest_nucleus_reaching_p():
    probs = torch.tensor([[0.5, 0.05, 0.3, 0.15]])
    logits = probs.log()
    assert torch.isfinite(top_p_filter(logits, 0.7)).tolist() == [[True, False, True, False]]  # 0.5 + 0.3 >= 0.7
    assert torch.isfinite(top_p_filter(logits, 0.8)).tolist() == [[True, False, True, False]]  # exactly reached
    assert torch.isfinite(top_p_filter(logits, 0.81)).tolist() == [[True, False, True, True]]
    assert torch.isfinite(top_p_filter(logits, 1e-6)).sum() == 1  # the most likely token always survives
    # the filtered distribution renormalises over the nucleus only
    renormed = torch.softmax(filter_logits(logits, SamplingConfig(top_p=0.7)), -1)
    assert renormed[0].tolist() == pytest.approx([0.625, 0.0, 0.375, 0.0], abs=1e-6)


def test_sampling_follows_the_distribution_and_never_picks_filtered_tokens():
    probs = torch.tensor([0.1, 0.6, 0.0, 0.3])
    logits = probs.log().expand(1, 20000, 4)
    tokens = Sampler(SamplingConfig(), [3]).sample(logits)[0]
    frequencies = torch.bincount(tokens, minlength=4).float() / tokens.numel()
    assert frequencies.tolist() == pytest.approx(probs.tolist(), abs=0.015)
    random_logits = torch.randn(2, 50, 6)
    top1 = Sampler(SamplingConfig(top_k=1), [3, 4]).sample(random_logits)
    assert torch.equal(top1, random_logits.argmax(-1))
    greedy = Sampler(SamplingConfig(temperature=0.0), [0]).sample(logits[:, :5])
    assert (greedy == 1).all()


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_the_top_k_fast_path_draws_the_same_tokens_as_filtering_the_whole_vocabulary(temperature):
    logits = torch.randn(3, 40, 64)
    config = SamplingConfig(top_k=9, temperature=temperature)
    fast = Sampler(config, [5, 6, 7]).sample(logits)
    reference = Sampler(config, [5, 6, 7])
    noise = reference.uniforms(40, 64).log_().neg_().log_().neg_()
    assert torch.equal(fast, (filter_logits(logits, config) + noise).argmax(-1))
    ranks = (logits > logits.gather(-1, fast[..., None])).sum(-1)
    assert ranks.max() < 9 and ranks.float().mean() > 1  # always among the k best, not always the best


def test_each_row_draws_from_its_own_seed():
    logits = torch.randn(1, 30, 16).expand(3, 30, 16)
    together = Sampler(SamplingConfig(), [11, 12, 13]).sample(logits)
    alone = Sampler(SamplingConfig(), [12]).sample(logits[:1])
    assert torch.equal(together[1], alone[0])
    assert not torch.equal(together[0], together[1])


def test_guidance_combines_conditional_and_unconditional_halves():
    cond, uncond = torch.randn(2, 5), torch.randn(2, 5)
    doubled = torch.cat([cond, uncond])
    assert torch.allclose(guide(doubled, 3.0), uncond + 3.0 * (cond - uncond))
    assert torch.allclose(guide(doubled, 1.0), cond)


def test_a_logit_bias_steers_each_row_and_must_match_the_batch():
    logits = torch.zeros(2, 50, 6)  # uniform: without a bias every token is drawn
    bias = torch.zeros(2, 6)
    bias[0, 4], bias[1, 1] = 30.0, 30.0  # row 0 prefers token 4, row 1 token 1
    steered = Sampler(SamplingConfig(top_k=3), [0, 1], logit_bias=bias).sample(logits)
    assert (steered[0] == 4).all() and (steered[1] == 1).all()
    plain = Sampler(SamplingConfig(top_k=0), [0, 1]).sample(logits)
    assert len(plain.unique()) > 3
    assert torch.equal(Sampler(SamplingConfig(), [0, 1], logit_bias=bias).biased(logits)[:, 0], bias)
    with pytest.raises(ValueError, match="logit_bias"):
        Sampler(SamplingConfig(), [0, 1, 2], logit_bias=bias)
    with pytest.raises(ValueError, match="logit_bias"):
        Sampler(SamplingConfig(), [0, 1], logit_bias=bias).sample(torch.zeros(2, 5, 7))
