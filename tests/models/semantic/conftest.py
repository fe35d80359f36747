"""Never let `transformers` reach the hub from these tests: pretrained encoders are read from tmp dirs."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
