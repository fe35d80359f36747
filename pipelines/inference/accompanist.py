"""`Accompanist`: vocals in, accompaniment and mixed song out, through the token cascade.

    accompanist = Accompanist.from_pretrained("models/checkpoints/default")
    takes = accompanist.accompany(load_audio("vocals.wav"), GenerationOptions(seed=1))

Steps for a batch (SingSong, Donahue et al. 2023, Fig. 1):

1. **Featurise** each vocal exactly as the token cache did for training (`pipelines.tokens.featurize`):
   downmix, resample to the tokenizers' rates, add white noise at the model's `vocal_noise_snr_db`
   (SingSong's fix for the gap between separated training vocals and clean real vocals; on by default, as
   in training), and tokenize into the condition streams the cascade was trained on (`S` semantic, `SA`
   semantic + coarse acoustic, `M` melodic bottleneck). Vocals of different lengths are zero-padded to the
   longest (silence is in-distribution: rests) and the outputs cropped back.
2. **Generate** instrumental codec codes with the cascade — one batched call per distinct sampling setting,
   with every take as a batch row and its own seed; with `plan_candidates` N > 1 the semantic stage samples N
   harmony plans per take and the best-fitting one is rendered (`plan_selection.py`).
3. **Decode** with the codec, resample to the vocal's sample rate, match its channels and exact length.
4. **Mix**: loudness balance + look-ahead limiter (`pipelines.inference.mixing`).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from core.audio import Audio, resample, to_channels
from models.loading import load_tokenizer
from models.melody import MelodyTokenizer
from models.rhythm import BeatTokenizer
from models.tokenizer import AudioTokenizer
from pipelines.inference.engine import (
    AccompanimentEngine,
    GenerationOptions,
    ProgressCallback,
    Take,
    take_rows,
    with_melody_checks,
)
from pipelines.inference.mixing import MixSettings, mix
from pipelines.inference.model_dir import ModelDirectoryError, check_compatibility, read_manifest
from pipelines.inference.plan_selection import HarmonyPlanCritic, KeyPrior
from pipelines.tokens.featurize import Featurizer, encode
from pipelines.tokens.streams import StreamName

log = logging.getLogger(__name__)


@contextmanager
def intra_op_threads(count: int | None) -> Iterator[None]:
    """Run the block with `count` torch intra-op threads (None: leave the setting alone), then restore it."""
    previous = torch.get_num_threads()
    if count is not None and count != previous:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        if torch.get_num_threads() != previous:
            torch.set_num_threads(previous)


def default_model_dir() -> Path:
    """The model shipped with the repository (`models/checkpoints/default`)."""
    import models

    return Path(models.__file__).resolve().parent / "checkpoints" / "default"


class Accompanist(AccompanimentEngine):
    """The accompaniment engine backed by a trained cascade (see the module docstring)."""

    def __init__(
        self,
        cascade: object,
        codec: AudioTokenizer,
        semantic: AudioTokenizer | None,
        *,
        vocal_noise_snr_db: float | None = 20.0,
        mix_settings: MixSettings | None = None,
        device: str = "cpu",
        generation_threads: int | Literal["auto"] | None = "auto",
    ) -> None:
        """`generation_threads`: torch threads for generation on CPU (None: torch's own setting; "auto": 1 when
        a stage decodes token by token, torch's setting when every stage decodes whole windows). One step of
        token-by-token decoding with these small transformers is a chain of tiny matrix-vector products that a
        second OpenMP thread only slows down (the v1 model generated ~20% faster on 1 thread than on 2 on the
        2-core reference machine), while masked passes over whole windows are matrix products that use both:
        the v2 default model's RTF at batch 1 went 0.223 -> 0.155 and at batch 8 0.229 -> 0.149 with 2 threads
        (`benchmarks/cascade_rtf.py --generation-threads 1|2`). The codec's decoder keeps every thread.
        """
        if not codec.can_decode:
            raise ModelDirectoryError("the model's codec cannot decode tokens to audio")
        self.cascade = cascade
        self.codec = codec
        self.semantic = semantic
        self.melody = MelodyTokenizer()
        self.beat = BeatTokenizer(melody=self.melody)
        self.vocal_noise_snr_db = vocal_noise_snr_db
        self.mix_settings = mix_settings or MixSettings()
        self.device = device
        if generation_threads == "auto":
            generation_threads = None if getattr(cascade, "decodes_in_parallel", False) else 1
        self.generation_threads = generation_threads
        self.recommended_sampling: dict[str, float] = {}  # the model directory's `sampling` (from_pretrained)
        # Scores sampled harmony plans for `plan_candidates` > 1; None when the semantic tokens are not harmony ones.
        self.plan_critic = HarmonyPlanCritic.for_tokenizer(semantic) if semantic is not None else None
        self._key_priors: dict[float, KeyPrior] = {}  # by strength, built on first use (same tokens' chroma)

    @classmethod
    def from_pretrained(cls, directory: str | Path | None = None, *, device: str = "cpu") -> Accompanist:
        from models.cascade import Cascade

        directory = Path(directory) if directory is not None else default_model_dir()
        manifest = read_manifest(directory)
        codec = load_tokenizer(directory / manifest.codec, device=device)
        semantic = load_tokenizer(directory / manifest.semantic, device=device) if manifest.semantic else None
        cascade = Cascade.from_pretrained(directory / manifest.cascade, device=device)
        if cascade.featurization != manifest.featurization:
            raise ModelDirectoryError(
                f"{directory}: manifest says featurization {manifest.featurization!r}, "
                f"cascade was trained with {cascade.featurization!r}"
            )
        check_compatibility(
            directory,
            cascade.stream_specs(),
            {"codec": codec, "semantic": semantic, "melody": MelodyTokenizer(), "beat": BeatTokenizer()},
            cascade.num_coarse_levels,
        )
        accompanist = cls(cascade, codec, semantic, vocal_noise_snr_db=manifest.vocal_noise_snr_db, device=device)
        accompanist.recommended_sampling = dict(manifest.sampling)
        return accompanist

    # ------------------------------------------------------------------------------------------ features
    def _tokenizer_for(self, stream: StreamName) -> AudioTokenizer:
        tokenizers = {"semantic": self.semantic, "melody": self.melody, "beat": self.beat, "codec": self.codec}
        tokenizer = tokenizers[stream.tokenizer]
        if tokenizer is None:
            raise ModelDirectoryError(f"no tokenizer for condition stream {stream}")
        return tokenizer

    def _trained_on_noisy(self, stream: StreamName) -> bool:
        """Whether any stage's training notes say `stream` was read from its noisy twin."""
        for stage in self.cascade.stages.values():
            note = stage.training_notes.get("condition_noise", {}).get(str(stream), {})
            if float(note.get("probability", 0.0)) > 0:
                return True
        return False

    def featurize(self, vocals: Sequence[Audio], seeds: Sequence[int]) -> dict[str, torch.Tensor]:
        """Condition tokens `{stream: [B, K, F]}` for the cascade (noise added as the model was trained).

        The token cache's featurisation (`pipelines.tokens.featurize`) with the take's seed as the noise key:
        a vocal featurised here with seed s gets the tokens the cache stores for it as item "s".
        """
        clips = [Featurizer(v.samples, v.sample_rate, key=seed) for v, seed in zip(vocals, seeds, strict=True)]
        conditions: dict[str, torch.Tensor] = {}
        for name in self.cascade.condition_streams:
            stream = StreamName.parse(name)
            tokenizer = self._tokenizer_for(stream)
            # Semantic, melody and beat streams always get the noise (training reads their noisy twins). The vocal's
            # acoustic tokens get it when training did: caches made before `vocals.coarse_noisy` existed had
            # only clean ones, and a model trained on those must see clean ones here too.
            noisy = not stream.acoustic or self._trained_on_noisy(stream)
            snr = self.vocal_noise_snr_db if noisy else None
            codes = encode(tokenizer, [clip.audio(tokenizer, stream, snr) for clip in clips], self.device)
            if stream.kind == "coarse":
                codes = codes[:, : self.cascade.num_coarse_levels]
            conditions[name] = codes
        return conditions

    # ---------------------------------------------------------------------------------------- generation
    def accompany_batch(
        self,
        vocals: Sequence[Audio],
        options: Sequence[GenerationOptions],
        progress: ProgressCallback | None = None,
    ) -> list[list[Take]]:
        from models.cascade import SamplingConfig

        # One row per take; rows with the same sampling settings share one batched generate call.
        options = [o.with_defaults(self.recommended_sampling) for o in options]
        rows = take_rows(vocals, options)
        groups: dict[tuple, list[int]] = defaultdict(list)
        for r, (i, _, _) in enumerate(rows):
            o = options[i]
            groups[(o.temperature, o.top_k, o.top_p, o.guidance_scale, o.plan_candidates, o.key_strength)].append(r)
        results: list[list[Take]] = [[] for _ in vocals]
        done_rows = 0
        for (temperature, top_k, top_p, guidance, candidates, key_strength), members in groups.items():
            row_vocals = [vocals[rows[r][0]] for r in members]
            row_seeds = [rows[r][2] for r in members]
            conditions = self.featurize(row_vocals, row_seeds)
            longest = max(v.duration for v in row_vocals)
            num_frames = self.codec.num_frames(round(longest * self.codec.sample_rate))

            def group_progress(fraction: float, offset: int = done_rows, size: int = len(members)) -> None:
                if progress is not None:
                    progress(min(1.0, (offset + fraction * size) / len(rows)))

            threads = self.generation_threads if torch.device(self.device).type == "cpu" else None
            with intra_op_threads(threads):
                codes = self.cascade.generate(
                    conditions,
                    num_acoustic_frames=num_frames,
                    sampling=SamplingConfig(temperature=temperature, top_k=top_k, top_p=top_p, guidance_scale=guidance),
                    seeds=row_seeds,
                    progress=group_progress,
                    **self._plan_selection(candidates, key_strength),
                )
            with torch.inference_mode():
                audio = self.codec.decode(codes.to(self.device)).float().cpu().numpy()  # [R, C_codec, T]
            for row_index, r in enumerate(members):
                i, take, seed = rows[r]
                results[i].append(self._finish(vocals[i], audio[row_index], take, seed))
            done_rows += len(members)
        for takes in results:
            takes.sort(key=lambda take: take.take)
        if progress is not None:
            progress(1.0)
        return with_melody_checks(vocals, results, self.melody)  # on the clean vocal, not the noisy condition

    def _plan_selection(self, candidates: int | None, key_strength: float | None) -> dict[str, Any]:
        """`Cascade.generate`'s plan arguments: the vocal's key as a prior on the plan (`key_strength` > 0)
        and the best of `candidates` plans, when the model's plans are harmony tokens (else both are ignored)."""
        wanted = (candidates or 1) > 1 or (key_strength or 0.0) > 0
        if not wanted:
            return {}
        if self.plan_critic is None:
            log.warning(
                "plan_candidates=%s / key_strength=%s ignored: this model's semantic tokens are not harmony tokens",
                candidates,
                key_strength,
            )
            return {}
        arguments: dict[str, Any] = {}
        if candidates and candidates > 1:
            arguments.update(plan_candidates=candidates, plan_scorer=self.plan_critic)
        if key_strength and key_strength > 0:
            if key_strength not in self._key_priors:
                self._key_priors[key_strength] = KeyPrior(self.plan_critic.chroma, key_strength)
            arguments["plan_prior"] = self._key_priors[key_strength]
        return arguments

    def _finish(self, vocal: Audio, generated: np.ndarray, take: int, seed: int) -> Take:
        """Codec output `[C, T]` -> accompaniment and mix at the vocal's rate, channels and length."""
        audio = resample(generated, self.codec.sample_rate, vocal.sample_rate)
        length = vocal.num_frames
        if audio.shape[-1] < length:
            audio = np.pad(audio, ((0, 0), (0, length - audio.shape[-1])))
        audio = to_channels(audio[:, :length], vocal.channels).astype(np.float32)
        mixed, stem = mix(vocal.samples, audio, vocal.sample_rate, self.mix_settings)
        return Take(accompaniment=stem, mix=mixed, sample_rate=vocal.sample_rate, seed=seed, take=take)


def load_engine(model_dir: str | Path | None = None, device: str = "cpu") -> Accompanist:
    """Factory for the service worker (`SINGSONG_ENGINE=pipelines.inference.accompanist:load_engine`)."""
    return Accompanist.from_pretrained(model_dir, device=device)
