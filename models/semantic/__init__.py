"""Semantic tokens: frame-level audio features quantized with k-means (AudioLM / SingSong "semantic" stream).

AudioLM (Borsos et al., 2022) and SingSong (Donahue et al., 2023) quantize w2v-BERT activations with
k-means (k=1024, 25 Hz). No pretrained weights can be downloaded in this project, so two feature sources
are offered behind one interface (`features.FeatureExtractor`):

* `features.BuiltinFeatureExtractor`: weight-free DSP features (MFCC + deltas, pitch-class salience,
  pitch height, spectral statistics). HuBERT's first training iteration used k-means on MFCCs as targets
  (Hsu et al., 2021), so this is a principled, if weaker, stand-in.
* `hubert.PretrainedEncoderFeatureExtractor`: a hidden layer of any local `transformers` wav2vec2-family
  encoder (HuBERT, wav2vec 2.0, WavLM, data2vec-audio).

`tokenizer.SemanticTokenizer` combines an extractor with standardisation and k-means centroids.
Import the submodules directly; this package file stays import-light.
"""
