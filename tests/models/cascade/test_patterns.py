import pytest
import torch

from models.cascade.patterns import (
    build_delay_pattern,
    delay_valid_mask,
    fit_length,
    flatten_frames,
    frames_per_step,
    grid_rate,
    undo_delay_pattern,
    unflatten_frames,
)


def test_delay_pattern_shifts_each_codebook_and_round_trips():
    codes = torch.randint(0, 10, (2, 4, 7))
    delayed = build_delay_pattern(codes, empty=10)
    assert delayed.shape == (2, 4, 10)
    for level in range(4):
        assert torch.equal(delayed[:, level, level : level + 7], codes[:, level])
        assert (delayed[:, level, :level] == 10).all() and (delayed[:, level, level + 7 :] == 10).all()
    assert torch.equal(undo_delay_pattern(delayed), codes)
    valid = delay_valid_mask(4, 7)
    assert torch.equal(valid, delayed[0] != 10)


def test_flattening_is_frame_major_and_round_trips():
    codes = torch.arange(12).view(1, 3, 4)  # level l, frame f -> 4 l + f
    flat = flatten_frames(codes)
    assert flat[0, :6].tolist() == [0, 4, 8, 1, 5, 9]
    assert torch.equal(unflatten_frames(flat, 3), codes)


@pytest.mark.parametrize(
    ("rates", "expected"), [((25.0, 50.0), 25.0), ((25.0, 200.0), 25.0), ((50.0, 37.5), 12.5), ((75.0,), 75.0)]
)
def test_grid_rate_divides_every_rate(rates, expected):
    assert grid_rate(rates) == pytest.approx(expected)
    assert [frames_per_step(rate, expected) for rate in rates] == [round(rate / expected) for rate in rates]


def test_fit_length_cuts_or_repeats_the_last_frame():
    tokens = torch.tensor([[[1, 2, 3]]])
    assert fit_length(tokens, 2).tolist() == [[[1, 2]]]
    assert fit_length(tokens, 5).tolist() == [[[1, 2, 3, 3, 3]]]
