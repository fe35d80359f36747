#!/usr/bin/env bash
# One-shot set-up on a fresh machine: system packages, a virtual environment in .venv, the project and its
# dev tools. Safe to rerun: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

SYSTEM_PACKAGES=(ffmpeg redis-server docker-compose rubberband-cli)
# The test command also needs a real browser for the web page's tests (tests/service/test_web.py).
[ "${SINGSONG_SETUP_TESTS:-0}" = 1 ] && SYSTEM_PACKAGES+=(chromium)
missing=()
for pkg in "${SYSTEM_PACKAGES[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    echo "setup: installing system packages: ${missing[*]}"
    $SUDO apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "setup: please install these system packages first: ${missing[*]}" >&2
    exit 1
  fi
fi

PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
PIP=(.venv/bin/python -m pip --disable-pip-version-check -q)
# torch first and exactly pinned: this resolves to the local CPU wheel; a looser spec pulls CUDA builds.
"${PIP[@]}" install "torch==2.13.0"
"${PIP[@]}" install -e ".[dev]"
# tinysoundfont declares pyaudio (live playback only, needs PortAudio headers); we only render to arrays.
"${PIP[@]}" install --no-deps "tinysoundfont==0.3.7"
# torchaudio must never be present: it breaks `import transformers` on this CPU build.
.venv/bin/python -c "import importlib.util,sys; sys.exit('torchaudio is installed: remove it' if importlib.util.find_spec('torchaudio') else 0)"
