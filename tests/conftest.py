"""Settings shared by the whole test suite."""

import os
from collections.abc import Iterator

import pytest

# Nothing may reach the Hugging Face hub: every model in the tests is built locally.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(autouse=True)
def single_torch_thread() -> Iterator[None]:
    """Run every test on one intra-op thread, then restore the previous setting.

    The test models are tiny: they gain nothing from threads, and on a shared 2-core machine OpenMP threads
    spin against each other (tiny models ran up to 10x slower with the default thread count).
    """
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
