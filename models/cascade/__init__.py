"""The token transformer cascade: vocal tokens -> instrumental semantic -> coarse -> fine codec codes.

SingSong (Donahue et al., 2023) adapted AudioLM (Borsos et al., 2022) to accompaniment; this package holds
the stage models and their sampling. Public API::

    from models.cascade import Cascade, SamplingConfig, build_cascade
    cascade = Cascade.from_pretrained("models/accompanist", device="cpu")
    codes = cascade.generate({"vocals.semantic": tokens},          # [B, 1, F_25Hz]
                             num_acoustic_frames=500, sampling=SamplingConfig(top_k=250, guidance_scale=3.0),
                             seeds=[0, 1])                          # -> [B, K, 500] codec codes

Files: `transformer.py` (decoder + static KV cache), `patterns.py` (flattening, delay pattern, alignment),
`sampling.py` (filters, guidance, per-row generators), `config.py` (what a stage is), `base.py` (windowed
generation and checkpoints of any stage), `stage.py` (autoregressive stages: AudioLM flattening, MusicGen delay
pattern), `masked.py` (the parallel SoundStorm-style stage), `cascade.py` (the stages of one model directory).
"""

from models.cascade.base import StageModel, build_stage_model
from models.cascade.cascade import (
    Cascade,
    CascadeError,
    PlanPrior,
    PlanScorer,
    build_cascade,
    featurization_of,
    generate_plan,
    resolve_stage_dir,
)
from models.cascade.config import (
    CHECKPOINT_KIND,
    DEFAULT_WINDOWS,
    FEATURIZATIONS,
    PATTERNS,
    STAGES,
    StageConfig,
    StreamInfo,
    build_stage_config,
)
from models.cascade.masked import MaskedStageLM
from models.cascade.sampling import Sampler, SamplingConfig
from models.cascade.stage import StageLM
from models.cascade.transformer import KVCache, Transformer, TransformerConfig

__all__ = [
    "CHECKPOINT_KIND",
    "DEFAULT_WINDOWS",
    "FEATURIZATIONS",
    "PATTERNS",
    "STAGES",
    "Cascade",
    "CascadeError",
    "KVCache",
    "MaskedStageLM",
    "PlanPrior",
    "PlanScorer",
    "Sampler",
    "SamplingConfig",
    "StageConfig",
    "StageLM",
    "StageModel",
    "StreamInfo",
    "Transformer",
    "TransformerConfig",
    "build_cascade",
    "build_stage_config",
    "build_stage_model",
    "featurization_of",
    "generate_plan",
    "resolve_stage_dir",
]
