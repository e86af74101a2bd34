#!/usr/bin/env bash
# The main job on a built-in default: builds Tune, writes a small random DeepSeek-V2 model in the Hugging Face
# layout, shows what it holds, and generates from it (plain, chat and fill-in-the-middle prompts).
set -euo pipefail
cd "$(dirname "$0")"
out=${1:-out/demo}
dotnet build cli/Tune.Cli.csproj -c Release --nologo -v quiet
./tune new --config tiny --out "$out" --seed 1
./tune inspect "$out"
echo "--- generate (random weights, so the text is noise; greedy, 24 tokens):"
./tune generate --model "$out" --prompt "def fibonacci(n):" --max-tokens 24
echo
./tune generate --model "$out" --chat "Write a haiku about tensors." --max-tokens 24 --temperature 0.8 --seed 3
echo
./tune generate --model "$out" --fim-prefix $'def add(a, b):\n    ' --fim-suffix $'\n    return c' --max-tokens 24
echo
