import json

import pytest
import torch

from models.checkpoint import (
    CheckpointError,
    load_checkpoint,
    load_training_state,
    read_checkpoint_config,
    save_checkpoint,
    save_training_state,
)


def test_round_trip_keeps_tensors_config_and_kind(tmp_path):
    tensors = {"w": torch.randn(3, 4), "b": torch.arange(5)}
    save_checkpoint(tmp_path / "ck", kind="codec", config={"levels": 8}, tensors=tensors, extra={"step": 3})
    loaded = load_checkpoint(tmp_path / "ck", kind="codec")
    assert loaded.kind == "codec" and loaded.config == {"levels": 8} and loaded.extra == {"step": 3}
    assert torch.equal(loaded.tensors["w"], tensors["w"]) and torch.equal(loaded.tensors["b"], tensors["b"])
    assert not list(tmp_path.glob(".ck*")), "temporary directories must not be left behind"


def test_wrong_kind_missing_and_newer_version_are_reported(tmp_path):
    save_checkpoint(tmp_path / "ck", kind="codec", config={}, tensors={"x": torch.zeros(1)})
    with pytest.raises(CheckpointError, match="expected a 'semantic' checkpoint, found 'codec'"):
        load_checkpoint(tmp_path / "ck", kind="semantic")
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nope")
    document = json.loads((tmp_path / "ck" / "config.json").read_text())
    document["format_version"] = 99
    (tmp_path / "ck" / "config.json").write_text(json.dumps(document))
    with pytest.raises(CheckpointError, match="newer"):
        read_checkpoint_config(tmp_path / "ck")


def test_corrupt_weights_raise_checkpoint_error(tmp_path):
    save_checkpoint(tmp_path / "ck", kind="codec", config={}, tensors={"x": torch.zeros(10)})
    (tmp_path / "ck" / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="corrupt weights"):
        load_checkpoint(tmp_path / "ck")


def test_failed_save_leaves_previous_checkpoint_intact(tmp_path):
    save_checkpoint(tmp_path / "ck", kind="codec", config={"v": 1}, tensors={"x": torch.ones(2)})
    with pytest.raises(TypeError):
        save_checkpoint(tmp_path / "ck", kind="codec", config={"v": object()}, tensors={"x": torch.zeros(2)})
    loaded = load_checkpoint(tmp_path / "ck")
    assert loaded.config == {"v": 1} and torch.equal(loaded.tensors["x"], torch.ones(2))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck"]


def _train_steps(model, optimizer, steps):
    for _ in range(steps):
        optimizer.zero_grad()
        model(torch.ones(2, 3)).pow(2).sum().backward()
        optimizer.step()


def test_training_state_resumes_exactly(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    _train_steps(model, optimizer, 3)
    scheduler.step()
    save_training_state(tmp_path, model=model, optimizer=optimizer, scheduler=scheduler, step=3, extra={"a": 1})

    resumed = torch.nn.Linear(3, 2)
    resumed_opt = torch.optim.AdamW(resumed.parameters(), lr=0.1)
    resumed_sched = torch.optim.lr_scheduler.StepLR(resumed_opt, step_size=1, gamma=0.5)
    info = load_training_state(tmp_path, model=resumed, optimizer=resumed_opt, scheduler=resumed_sched)
    assert info == {"step": 3, "a": 1}
    assert resumed_opt.param_groups[0]["lr"] == pytest.approx(0.05)
    _train_steps(model, optimizer, 2)
    _train_steps(resumed, resumed_opt, 2)
    for a, b in zip(model.parameters(), resumed.parameters(), strict=True):
        assert torch.equal(a, b), "resumed training must continue bit-identically"


def test_interrupted_training_state_save_is_detected(tmp_path):
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    save_training_state(tmp_path, model=model, optimizer=optimizer, step=1)
    document = json.loads((tmp_path / "training_state.json").read_text())
    document["step"] = 7  # as if the tensors of step 1 had been paired with the JSON of another save
    (tmp_path / "training_state.json").write_text(json.dumps(document))
    with pytest.raises(CheckpointError, match="inconsistent"):
        load_training_state(tmp_path, model=model, optimizer=optimizer)
