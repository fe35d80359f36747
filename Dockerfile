# syntax=docker/dockerfile:1
# One image for the API and the worker (they differ only in their command; see docker-compose.yml).
#   GPU (default): docker build -t singsong:gpu .
#   CPU only:      docker build --build-arg VARIANT=cpu -t singsong:cpu .
ARG VARIANT=gpu
ARG CUDA_IMAGE=nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---------------------------------------------------------------------------------------------- bases
FROM ${CUDA_IMAGE} AS base-gpu
# Unpinned apt packages: the distribution's security updates should land on every rebuild, and the
# base image already pins the distribution release.
# hadolint ignore=DL3008
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        python3.11 python3.11-venv ffmpeg rubberband-cli ca-certificates \
    && rm -rf /var/lib/apt/lists/*
# PyPI's default torch wheel for Linux is the CUDA build, which is what this image is for.
ENV PYTHON=python3.11 TORCH_INDEX_URL=https://pypi.org/simple

FROM ${PYTHON_IMAGE} AS base-cpu
# hadolint ignore=DL3008
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ffmpeg rubberband-cli \
    && rm -rf /var/lib/apt/lists/*
# The CPU wheel index: PyPI's default torch pulls several GB of CUDA libraries a CPU host cannot use.
# (Only torch comes from there; `pip install .` then finds torch==2.13.0 satisfied and leaves it.)
ENV PYTHON=python3.11 TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu

# ---------------------------------------------------------------------------------------------- runtime
# base-${VARIANT} is one of the stages above (tagged images underneath), not a registry image to tag.
# hadolint ignore=DL3006
FROM base-${VARIANT} AS runtime
ENV VIRTUAL_ENV=/opt/venv PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

# The same install steps as CI's scripts/setup.sh, in the same order and with the same pins, so the
# image runs exactly what the tests ran: torch==2.13.0 first (exact pin), then the project, then
# tinysoundfont with --no-deps (it declares pyaudio, which needs PortAudio and is never used), then the
# check that torchaudio did not sneak in. Differences, on purpose: a regular (not editable) install and
# no [dev] extras, because the image runs the service rather than the test suite.
RUN "$PYTHON" -m venv "$VIRTUAL_ENV" \
    && pip install --no-cache-dir --index-url "$TORCH_INDEX_URL" "torch==2.13.0"
COPY pyproject.toml README.md ./
COPY core ./core
COPY models ./models
COPY pipelines ./pipelines
COPY service ./service
# `.` is the project itself: its dependencies are constrained in pyproject.toml, exactly as in CI.
# hadolint ignore=DL3013
RUN pip install --no-cache-dir . \
    && pip install --no-cache-dir --no-deps "tinysoundfont==0.3.7" \
    && python -c "import importlib.util,sys; sys.exit('torchaudio is installed: remove it' if importlib.util.find_spec('torchaudio') else 0)"

# Never run as root: the API parses untrusted uploads (and hands some of them to ffmpeg).
RUN useradd --system --create-home --uid 10001 --user-group singsong \
    && mkdir -p /data/storage \
    && chown 10001:10001 /data/storage
# Numeric, so that Kubernetes' runAsNonRoot can verify it without /etc/passwd.
USER 10001:10001
ENV SINGSONG_STORAGE_DIR=/data/storage PORT=8000
VOLUME ["/data/storage"]
EXPOSE 8000

# The API's probe; the worker service overrides it with `python -m service.healthcheck --worker`.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 CMD ["python", "-m", "service.healthcheck"]
CMD ["python", "-m", "service", "serve", "--host", "0.0.0.0", "--port", "8000"]
