"""`Cascade`: the trained stages of one accompaniment model, loaded from one directory, generating codec codes.

SingSong (Donahue et al., 2023) turns a vocal into an instrumental with AudioLM's stages (Borsos et al.,
2022). Three acoustic back-ends are supported after the semantic stage:

    cascade:  vocal -> [semantic] -> instrumental semantic -> [coarse] -> coarse codes -> [fine] -> fine codes
    delay:    vocal -> [semantic] -> instrumental semantic -> [delay]  -> all codec levels (MusicGen pattern)
    parallel: vocal -> [semantic] -> instrumental semantic -> [parallel] -> all levels (SoundStorm, masked.py)

A model directory::

    MODEL/
        cascade.json        featurisation, condition streams, which stages, stream specs, training notes
        semantic/           stage checkpoints (`models.checkpoint`, kind "cascade_stage")
        coarse/ fine/       ... the AudioLM back-end, and/or
        delay/              ... the single-stage delay-pattern back-end, and/or
        parallel/           ... the single-stage parallel (masked) back-end

When several back-ends are present the parallel one is used, then the delay one, unless `acoustic=` names
another: they are the fast ones (a few passes per window, or one step per frame, instead of one per code;
see `benchmarks/cascade_rtf.py`). The semantic stage may itself be autoregressive or masked.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from core.errors import SingsongError
from models.cascade.base import StageModel
from models.cascade.config import CHECKPOINT_KIND, FEATURIZATIONS, StreamInfo
from models.cascade.sampling import Sampler, SamplingConfig, row_seed
from models.checkpoint import CONFIG_FILE, read_checkpoint_config

log = logging.getLogger(__name__)

CASCADE_FILE = "cascade.json"
CASCADE_FORMAT_VERSION = 1
ProgressCallback = Callable[[float], None]
#: Scores candidate harmony plans: (vocal conditions `{stream: [R, K, F]}`, plans `[R, 1, F_s]`) -> `[R]`,
#: higher is better (see `generate`'s `plan_candidates`).
PlanScorer = Callable[[Mapping[str, Tensor], Tensor], Tensor]
#: A prior over plan tokens: (vocal conditions `{stream: [R, K, F]}`) -> logit bias `[R, V]` added at every
#: decoding step of the semantic stage (see `generate`'s `plan_prior`).
PlanPrior = Callable[[Mapping[str, Tensor]], Tensor]
#: Sub-stream of every take's seed per stage, so stages draw independent random numbers.
_STAGE_STREAMS = {"semantic": 0, "coarse": 1, "fine": 2, "delay": 3, "parallel": 4}
#: Acoustic back-ends whose one stage generates every codec level.
SINGLE_STAGE_BACK_ENDS = ("parallel", "delay")


class CascadeError(SingsongError):
    """A cascade directory or a generation request is inconsistent."""


def featurization_of(condition_streams: Sequence[str]) -> str:
    for name, streams in FEATURIZATIONS.items():
        if tuple(condition_streams) == streams:
            return name
    return "custom"


class _Progress:
    """Turns per-step counts into fractions, calling `callback` at most every 1% (and at the end)."""

    def __init__(self, total: int, callback: ProgressCallback | None) -> None:
        self.total, self.callback, self.done, self.reported = max(total, 1), callback, 0, -1.0

    def __call__(self, steps: int) -> None:
        self.done += steps
        fraction = min(self.done / self.total, 1.0)
        if self.callback is not None and fraction - self.reported >= 0.01:
            self.reported = fraction
            self.callback(fraction)

    def finish(self) -> None:
        if self.callback is not None and self.reported < 1.0:
            self.callback(1.0)


class Cascade:
    """The stages of one trained model (see the module docstring)."""

    def __init__(self, stages: Mapping[str, StageModel], *, acoustic: str | None = None) -> None:
        self.stages = dict(stages)
        if "semantic" not in self.stages:
            raise CascadeError("a cascade needs a semantic stage")
        has_cascade = "coarse" in self.stages and "fine" in self.stages
        if acoustic is None:
            acoustic = next((name for name in SINGLE_STAGE_BACK_ENDS if name in self.stages), "cascade")
        if (acoustic in SINGLE_STAGE_BACK_ENDS and acoustic not in self.stages) or (
            acoustic == "cascade" and not has_cascade
        ):
            raise CascadeError(f"no {acoustic!r} back-end: stages are {sorted(self.stages)}")
        self.acoustic = acoustic
        # The vocal streams the stages read, the semantic stage's first: a later stage may read fewer (an
        # acoustic stage trained on the melody alone under a semantic stage that also reads the beat).
        self.condition_streams: list[str] = []
        for name in ["semantic", *(n for n in self.stages if n != "semantic")]:
            vocal = [s.name for s in self.stages[name].config.conditions if s.name.startswith("vocals.")]
            self.condition_streams += [s for s in vocal if s not in self.condition_streams]
        self.featurization: str = featurization_of(self.condition_streams)
        self._check_consistency()
        specs = self._specs()
        self.semantic_frame_rate: float = specs["instrumental.semantic"].frame_rate
        self.acoustic_frame_rate: float = specs["instrumental.coarse"].frame_rate
        self.num_coarse_levels: int = specs["instrumental.coarse"].codebooks
        self.num_acoustic_levels: int = self.num_coarse_levels + specs["instrumental.fine"].codebooks

    def _specs(self) -> dict[str, StreamInfo]:
        specs: dict[str, StreamInfo] = {}
        for stage in self.stages.values():
            for info in stage.config.streams:
                specs.setdefault(info.name, info)
        return specs

    def _check_consistency(self) -> None:
        specs = self._specs()
        for name, stage in self.stages.items():
            for info in stage.config.streams:
                if specs[info.name] != info:
                    raise CascadeError(f"stage {name} was trained with {info}, another stage with {specs[info.name]}")
            vocal = [s.name for s in stage.config.conditions if s.name.startswith("vocals.")]
            if name != "fine" and (not vocal or list(stage.config.guided) != vocal):
                raise CascadeError(
                    f"stage {name} is conditioned on vocal streams {vocal}, guided on {list(stage.config.guided)}: "
                    "a stage after the vocal needs at least one vocal stream, and guidance on all of them"
                )
        missing = {"instrumental.coarse", "instrumental.fine"} - set(specs)
        if missing:
            raise CascadeError(f"the stages do not define streams {sorted(missing)}")

    # ---- properties ---------------------------------------------------------------------------------

    def stream_specs(self) -> dict[str, dict[str, Any]]:
        """Every stream the stages were trained with: name -> {"codebooks", "cardinality", "frame_rate"}."""
        return {
            name: {"codebooks": info.codebooks, "cardinality": info.cardinality, "frame_rate": info.frame_rate}
            for name, info in sorted(self._specs().items())
        }

    @property
    def decodes_in_parallel(self) -> bool:
        """True when every stage decodes whole windows per pass (masked / SoundStorm-style), none token by token."""
        return all(stage.config.pattern == "masked" for stage in self.stages.values())

    @property
    def device(self) -> torch.device:
        return self.stages["semantic"].heads.weight.device

    def to(self, device: str | torch.device) -> Cascade:
        for stage in self.stages.values():
            stage.to(device)
        return self

    def num_parameters(self) -> dict[str, int]:
        return {name: stage.num_parameters() for name, stage in self.stages.items()}

    # ---- persistence --------------------------------------------------------------------------------

    @classmethod
    def from_pretrained(
        cls, directory: str | Path, device: str | torch.device = "cpu", *, acoustic: str | None = None
    ) -> Cascade:
        directory = Path(directory)
        info_path = directory / CASCADE_FILE
        if not info_path.is_file():
            raise CascadeError(f"{directory}: not a cascade model directory ({CASCADE_FILE} is missing)")
        try:
            info = json.loads(info_path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise CascadeError(f"{info_path}: corrupt ({error})") from error
        if int(info.get("format_version", 0)) > CASCADE_FORMAT_VERSION:
            raise CascadeError(f"{info_path}: format version {info.get('format_version')} is newer than supported")
        stages = {name: StageModel.from_pretrained(directory / name, device=device) for name in info["stages"]}
        return cls(stages, acoustic=acoustic or info.get("acoustic"))

    def save_pretrained(
        self,
        directory: str | Path,
        *,
        notes: Mapping[str, Any] | None = None,
        weights_dtype: torch.dtype | None = None,
    ) -> Path:
        """Write every stage and `cascade.json` (atomically per stage; `cascade.json` last)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        for name, stage in self.stages.items():
            stage.save_pretrained(directory / name, weights_dtype=weights_dtype)
        info = {
            "format_version": CASCADE_FORMAT_VERSION,
            "featurization": self.featurization,
            "condition_streams": self.condition_streams,
            "stages": sorted(self.stages),
            "acoustic": self.acoustic,
            "streams": self.stream_specs(),
            "notes": dict(notes or {}),
        }
        tmp = directory / f".{CASCADE_FILE}.tmp"
        tmp.write_text(json.dumps(info, indent=2))
        tmp.replace(directory / CASCADE_FILE)
        return directory

    # ---- generation ---------------------------------------------------------------------------------

    def _trained_for_guidance(self, stage: str) -> bool:
        """False only when the stage's training notes say it never saw null conditions (unknown: True)."""
        options = self.stages[stage].training_notes.get("train_options", {})
        return float(options.get("cond_dropout", 1.0)) > 0

    def _check_conditions(self, conditions: Mapping[str, Tensor], batch_size: int) -> dict[str, Tensor]:
        specs = self._specs()
        checked = {}
        for name in self.condition_streams:
            if name not in conditions:
                raise CascadeError(f"missing condition stream {name!r} (needs {self.condition_streams})")
            tokens = conditions[name]
            info = specs[name]
            if tokens.dim() != 3 or tokens.shape[0] != batch_size or tokens.shape[1] != info.codebooks:
                raise CascadeError(
                    f"condition {name}: expected [{batch_size}, {info.codebooks}, F], got {list(tokens.shape)}"
                )
            if tokens.shape[2] == 0:
                raise CascadeError(f"condition {name} is empty")
            if int(tokens.min()) < 0 or int(tokens.max()) >= info.cardinality:
                raise CascadeError(f"condition {name}: tokens must lie in [0, {info.cardinality})")
            checked[name] = tokens.long().to(self.device)
        return checked

    @torch.inference_mode()
    def generate(
        self,
        conditions: Mapping[str, Tensor],
        num_acoustic_frames: int,
        sampling: SamplingConfig,
        seeds: Sequence[int],
        progress: ProgressCallback | None = None,
        *,
        plan_candidates: int = 1,
        plan_scorer: PlanScorer | None = None,
        plan_prior: PlanPrior | None = None,
    ) -> Tensor:
        """Vocal condition streams `[B, K_s, F_s]` (each at its own rate) -> codec codes `[B, K, F]`
        (coarse levels first), `F = num_acoustic_frames`. Row b is sampled from `seeds[b]` alone, so takes
        are N rows with the same condition and different seeds. A condition should span the same audio as the
        output (`ceil(seconds * rate)` frames); a few frames more are cut, fewer repeat the last frame. Inputs
        longer than a stage's training window are generated window by window (see `stage.py`).

        `plan_candidates` > 1 with a `plan_scorer`: the semantic stage samples that many plans per row (all in
        one batch) and the acoustic stages render the best-scoring one - reranking, as a sampled LM's outputs
        are often reranked by a cheap critic. Candidate 0 is the plan a single sample would give, so a row's
        output changes only where another candidate scores strictly higher.

        `plan_prior`: a per-row logit bias on the semantic stage's tokens (e.g. towards the vocal's key), added
        at every decoding step; the acoustic stages are untouched."""
        if num_acoustic_frames < 1:
            raise CascadeError("num_acoustic_frames must be at least 1")
        sampling.validate()
        batch_size = len(seeds)
        if batch_size < 1:
            raise CascadeError("need at least one seed (one per batch row)")
        vocal = self._check_conditions(conditions, batch_size)
        device = self.device
        semantic_frames = math.ceil(num_acoustic_frames * self.semantic_frame_rate / self.acoustic_frame_rate)
        back_end = [self.acoustic] if self.acoustic in SINGLE_STAGE_BACK_ENDS else ["coarse", "fine"]
        frames = {name: num_acoustic_frames for name in back_end}
        frames["semantic"] = semantic_frames
        tracker = _Progress(sum(self.stages[n].generation_steps(frames[n]) for n in ["semantic", *back_end]), progress)

        def sampler(stage: str) -> Sampler:
            return Sampler(sampling, seeds, stream=_STAGE_STREAMS[stage], device=device)

        scale = sampling.guidance_scale
        if sampling.guided:
            untrained = [n for n in ["semantic", *back_end] if n != "fine" and not self._trained_for_guidance(n)]
            if untrained:
                log.warning("stages %s were trained without condition dropout: guidance will not help", untrained)
        semantic = generate_plan(
            self.stages["semantic"],
            vocal,
            semantic_frames,
            sampling,
            seeds,
            candidates=plan_candidates,
            scorer=plan_scorer,
            prior=plan_prior,
            on_step=tracker,
        )
        acoustic_conditions = {**vocal, "instrumental.semantic": semantic}
        if self.acoustic in SINGLE_STAGE_BACK_ENDS:
            codes = self.stages[self.acoustic].generate(
                acoustic_conditions, num_acoustic_frames, sampler(self.acoustic), scale, tracker
            )
        else:
            coarse = self.stages["coarse"].generate(
                acoustic_conditions, num_acoustic_frames, sampler("coarse"), scale, tracker
            )
            fine = self.stages["fine"].generate(
                {"instrumental.coarse": coarse}, num_acoustic_frames, sampler("fine"), 1.0, tracker
            )
            codes = torch.cat([coarse, fine], dim=1)
        tracker.finish()
        return codes


def generate_plan(
    stage: StageModel,
    vocal: Mapping[str, Tensor],
    frames: int,
    sampling: SamplingConfig,
    seeds: Sequence[int],
    *,
    candidates: int = 1,
    scorer: PlanScorer | None = None,
    prior: PlanPrior | None = None,
    on_step: Callable[[int], None] | None = None,
) -> Tensor:
    """A semantic stage's plans `[B, 1, F_s]` for vocal conditions `[B, K, F]`: one sample per row, or the
    best-scoring of `candidates`; `prior` biases every row's tokens (see `Cascade.generate`)."""
    stream = _STAGE_STREAMS["semantic"]
    if candidates < 1:
        raise CascadeError("plan_candidates must be at least 1")
    if candidates == 1 or scorer is None:
        bias = prior(vocal) if prior is not None else None
        sampler = Sampler(sampling, seeds, stream=stream, device=stage.device, logit_bias=bias)
        return stage.generate(vocal, frames, sampler, sampling.guidance_scale, on_step)
    # Candidate-major rows: [every row's candidate 0, every row's candidate 1, ...]; candidate 0 draws from the
    # take's own seed, candidate c from a seed derived from it, so takes stay reproducible.
    batch = len(seeds)
    row_seeds = list(seeds) + [row_seed(s, 100 + c) for c in range(1, candidates) for s in seeds]
    repeated = {name: tokens.repeat(candidates, 1, 1) for name, tokens in vocal.items()}
    bias = prior(repeated) if prior is not None else None
    sampler = Sampler(sampling, row_seeds, stream=stream, device=stage.device, logit_bias=bias)
    plans = stage.generate(repeated, frames, sampler, sampling.guidance_scale, on_step)
    scores = scorer(repeated, plans).reshape(candidates, batch)
    best = scores.argmax(dim=0).to(plans.device)  # ties go to the earliest candidate
    return plans.reshape(candidates, batch, *plans.shape[1:])[best, torch.arange(batch, device=plans.device)]


def resolve_stage_dir(path: str | Path) -> Path:
    """A stage checkpoint directory, given it or a training run directory (`RUN/model`)."""
    path = Path(path)
    for candidate in (path, path / "model"):
        if (candidate / CONFIG_FILE).is_file():
            return candidate
    raise CascadeError(f"{path}: neither a stage checkpoint nor a run directory with model/{CONFIG_FILE}")


def build_cascade(
    out: str | Path,
    *,
    semantic: str | Path,
    coarse: str | Path | None = None,
    fine: str | Path | None = None,
    delay: str | Path | None = None,
    parallel: str | Path | None = None,
    featurization: str | None = None,
    weights_dtype: torch.dtype | None = None,
    iterations: Mapping[str, Sequence[int]] | None = None,
) -> Cascade:
    """Assemble trained stages (run directories or stage checkpoints) into the model directory `out`.

    Needs `semantic` and `coarse` + `fine`, `delay` and/or `parallel`. `featurization`, when given, must be
    the one the stages were trained with (a guard against mixing runs). `weights_dtype` (e.g. `torch.float16`)
    stores the weights at that precision. `iterations` sets the decoding passes per level of masked stages
    (`{"parallel": (8, 1, 1)}`): a decoding choice, not a trained one, so it may differ from training's.
    """
    paths = {"semantic": semantic, "coarse": coarse, "fine": fine, "delay": delay, "parallel": parallel}
    stages: dict[str, StageModel] = {}
    for name, path in paths.items():
        if path is None:
            continue
        directory = resolve_stage_dir(path)
        checkpoint_stage = read_checkpoint_config(directory, kind=CHECKPOINT_KIND)["config"]["stage"]
        if checkpoint_stage != name:
            raise CascadeError(f"{path}: is a {checkpoint_stage!r} stage, given as {name!r}")
        stages[name] = StageModel.from_pretrained(directory)
    for name, passes in (iterations or {}).items():
        if name not in stages or stages[name].config.pattern != "masked":
            raise CascadeError(f"decoding passes given for {name!r}, which is not a masked stage of this model")
        try:
            stages[name].config = replace(stages[name].config, iterations=tuple(int(n) for n in passes))
        except ValueError as error:
            raise CascadeError(f"{name}: {error}") from error
    if (coarse is None) != (fine is None):
        raise CascadeError("the AudioLM back-end needs both a coarse and a fine stage")
    cascade = Cascade(stages)
    if featurization is not None and featurization != cascade.featurization:
        raise CascadeError(
            f"stages are conditioned on {cascade.condition_streams} ({cascade.featurization}), "
            f"not featurisation {featurization}"
        )
    # What training did to the vocal condition, per stage: the inference featuriser should match it.
    noise = {name: stage.training_notes.get("condition_noise", {}) for name, stage in stages.items()}
    cascade.save_pretrained(out, notes={"condition_noise": noise}, weights_dtype=weights_dtype)
    return cascade
