#!/usr/bin/env bash
# Installs llama.cpp, the independent oracle of the tests: npm's node-llama-cpp@3.22.1 ships prebuilt
# libllama/libggml-base for linux-x64 and the llama.cpp source (with its vocab GGUFs and test vectors) as a git bundle.
set -euo pipefail
cd "$(dirname "$0")"
if [[ ! -d node_modules/@node-llama-cpp/linux-x64/bins ]]; then
  # --ignore-scripts: the prebuilt binaries come as a dependency; the postinstall step would only try to download more.
  # --omit=optional skips node-llama-cpp's other platforms (CUDA, Vulkan, ARM: 600 MB); linux-x64 is a direct
  # dependency. Not `npm ci`: it insists on lock entries for platform packages the registry may not serve.
  npm install --ignore-scripts --no-audit --no-fund --omit=optional --no-save --loglevel=error
fi
if [[ ! -d llama.cpp/.git ]]; then
  rm -rf llama.cpp
  git -c advice.detachedHead=false clone -q node_modules/node-llama-cpp/llama/gitRelease.bundle llama.cpp
fi
echo "oracle ready: $(pwd)/llama.cpp ($(git -C llama.cpp rev-parse --short HEAD))"
