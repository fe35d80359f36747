"""Fixtures shared by the pipeline stages' tests: a tiny synthetic stem corpus and a tiny demucs repository.

Session-scoped and built here (no download), once for every test that needs them: separation, pairs, the
separator's training and evaluation.
"""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A demucs repository holding one tiny two-stem HDemucs named 'tiny' (8 kHz, 2 s segments)."""
    from pipelines.separation.repo import export_to_repo
    from tests.pipelines.separation.conftest import build_tiny

    repo = tmp_path_factory.mktemp("repo")
    export_to_repo(build_tiny(), repo, "tiny")
    return repo, "tiny"


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four 4 s synthetic songs at 16 kHz with stems (read-only for tests: copy before modifying)."""
    from pipelines.corpus.generate import CorpusSettings, generate_corpus

    out = tmp_path_factory.mktemp("corpus")
    generate_corpus(out, CorpusSettings(songs=4, seconds=4.0, seed=7, sample_rate=16000), progress=False)
    return out
