"""Shared test settings for the semantic tokenizer tests.

* Never let `transformers` reach the hub: pretrained encoders are read from tmp dirs.
* Run torch single-threaded inside these tests (restored afterwards): their tensors are tiny, and on a
  busy machine intra-op threads waiting for each other made small ops ~100x slower.
"""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
