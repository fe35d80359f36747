"""What every stage model shares: window-by-window generation, progress counting and checkpoints.

A stage model (`stage.py`: autoregressive, AudioLM / MusicGen layouts; `masked.py`: parallel, SoundStorm)
implements `forward` (training loss of a batch of aligned windows), `generate_window` (one window given the
condition slices and the already-known first frames) and `_window_steps` (forward passes one window costs,
for progress). This base turns those into `generate` over inputs of any length:

**Windows.** A stage trains on windows of `window_seconds`. Longer inputs are generated window by window:
each new window is given the last `prompt_seconds` (or more, for the final window, which is anchored at the
end so that it is full length) of what was already generated, as AudioLM continues audio, and only the rest
is sampled. There is no seam and the output has exactly the requested length.

Checkpoints are `models.checkpoint` directories of kind "cascade_stage" whatever the model class: the
config's `pattern` says which class rebuilds it (`StageModel.from_pretrained` dispatches on it).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from models.cascade.config import CHECKPOINT_KIND, StageConfig, StepCallback
from models.cascade.patterns import fit_length
from models.cascade.sampling import Sampler
from models.checkpoint import load_checkpoint, save_checkpoint


class StageModel(nn.Module):
    """Base of the stage models (see the module docstring). Batches are dicts `stream -> [B, K, F]`."""

    #: `StageConfig.pattern` values each subclass builds, filled in by `__init_subclass__`.
    _classes: ClassVar[dict[str, type[StageModel]]] = {}
    patterns: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for pattern in cls.patterns:
            StageModel._classes[pattern] = cls

    def __init__(self, config: StageConfig) -> None:
        super().__init__()
        self.config = config
        self.training_notes: dict[str, Any] = {}  # the checkpoint's `extra`: steps, options, condition noise

    # ---- what a subclass provides ----------------------------------------------------------------------

    def generate_window(
        self,
        conditions: Mapping[str, Tensor],
        prompt: Tensor,
        num_frames: int,
        sampler: Sampler,
        guidance_scale: float = 1.0,
        on_step: StepCallback | None = None,
    ) -> Tensor:
        """One window: condition slices `[B, K_s, F_s]`, the known first frames `prompt [B, Q, P]` ->
        `[B, Q, num_frames]` (the prompt, then `num_frames - P` generated frames)."""
        raise NotImplementedError

    def _window_steps(self, new_frames: int) -> int:
        """Forward passes `generate_window` takes to produce `new_frames` frames after the prompt."""
        raise NotImplementedError

    # ---- shared ------------------------------------------------------------------------------------

    def target_codes(self, batch: Mapping[str, Tensor]) -> Tensor:
        """The target streams of a batch, concatenated along codebooks: `[B, Q, F]`."""
        return torch.cat([batch[t.name].long() for t in self.config.targets], dim=1)

    def generation_steps(self, num_frames: int) -> int:
        """Forward passes `generate` will take for `num_frames` target frames (for progress reporting)."""
        return sum(self._window_steps(stop - end) for _, end, stop in self.window_plan(num_frames))

    def window_plan(self, num_frames: int) -> list[tuple[int, int, int]]:
        """Windows `(start, generated_before, stop)` covering `num_frames` (rounded up to the grid): frames
        `[start, generated_before)` are the prompt, `[generated_before, stop)` are generated."""
        grid = self.config.grid_frames
        total = math.ceil(num_frames / grid) * grid
        window, prompt = self.config.window_frames(), self.config.prompt_frames()
        plan, end = [], 0
        while end < total:
            start = 0 if end == 0 else max(0, min(end - prompt, total - window))
            stop = min(start + window, total)
            plan.append((start, end, stop))
            end = stop
        return plan

    @torch.inference_mode()
    def generate(
        self,
        conditions: Mapping[str, Tensor],
        num_frames: int,
        sampler: Sampler,
        guidance_scale: float = 1.0,
        on_step: StepCallback | None = None,
    ) -> Tensor:
        """Condition streams `[B, K_s, F_s]` (any length: cut or extended to the span) -> `[B, Q, num_frames]`,
        generated window by window as described in the module docstring."""
        plan = self.window_plan(num_frames)
        total = plan[-1][2]
        fitted = {}
        for info in self.config.conditions:  # condition frames per target frame, e.g. 0.5 for 25 Hz vs 50 Hz
            per = info.frame_rate / self.config.target_rate
            fitted[info.name] = (fit_length(conditions[info.name], round(total * per)), per)
        batch_size = sampler.batch_size
        device = self.device
        out = torch.zeros(batch_size, self.config.num_levels, total, dtype=torch.long, device=device)
        for start, end, stop in plan:
            window = {
                name: tokens[..., round(start * per) : round(stop * per)].to(device)
                for name, (tokens, per) in fitted.items()
            }
            out[:, :, start:stop] = self.generate_window(
                window, out[:, :, start:end], stop - start, sampler, guidance_scale, on_step
            )
        return out[:, :, :num_frames]

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    # ---- checkpoints -------------------------------------------------------------------------------

    def save_pretrained(
        self, directory: str | Path, *, extra: dict[str, Any] | None = None, weights_dtype: torch.dtype | None = None
    ) -> Path:
        """Write a `cascade_stage` checkpoint; `extra` defaults to the notes the stage was loaded with.

        `weights_dtype` (e.g. `torch.float16`) stores floating-point weights at that precision, half the
        bytes for a shipped model; loading casts them back to the model's dtype.
        """
        notes = self.training_notes if extra is None else extra
        tensors = self.state_dict()
        if weights_dtype is not None:
            tensors = {k: v.to(weights_dtype) if v.is_floating_point() else v for k, v in tensors.items()}
        return save_checkpoint(
            directory, kind=CHECKPOINT_KIND, config=self.config.to_dict(), tensors=tensors, extra=notes
        )

    @classmethod
    def from_pretrained(cls, directory: str | Path, *, device: str | torch.device = "cpu") -> StageModel:
        """Load a stage checkpoint as the model class its config's `pattern` names (whichever class is asked)."""
        checkpoint = load_checkpoint(directory, kind=CHECKPOINT_KIND, device=str(device))
        config = StageConfig.from_dict(checkpoint.config)
        model = build_stage_model(config)
        model.load_state_dict(checkpoint.tensors)
        model.training_notes = dict(checkpoint.extra)
        return model.to(device).eval()


def build_stage_model(config: StageConfig) -> StageModel:
    """An untrained stage model of the class that implements `config.pattern`."""
    import models.cascade.masked
    import models.cascade.stage  # noqa: F401

    if config.pattern not in StageModel._classes:
        raise ValueError(f"no stage model implements pattern {config.pattern!r}")
    return StageModel._classes[config.pattern](config)
