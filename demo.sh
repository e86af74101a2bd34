#!/usr/bin/env bash
# The main job on a built-in default, end to end on this machine's CPU: make a small random DeepSeek-V2 model in the
# Hugging Face layout, fine-tune it with LoRA on a tiny chat set (loss before and after), generate with the adapter
# (chat and fill-in-the-middle), and merge the adapter into a full checkpoint.
set -euo pipefail
cd "$(dirname "$0")"
dotnet build cli/Tune.Cli.csproj -c Release --nologo -v quiet
./tune new --config tiny --out out/demo --seed 1
./tune inspect out/demo
./tune train recipes/tiny-lora.yaml
echo "--- generate with the adapter (a random model: the text is noise; greedy, 24 tokens):"
./tune generate --model out/demo --adapter out/tiny-lora --chat "Write a function that reverses a string." --max-tokens 24
echo
./tune generate --model out/demo --adapter out/tiny-lora --fim-prefix $'def add(a, b):\n    ' --fim-suffix $'\n    return c' --max-tokens 24
echo
./tune merge --model out/demo --adapter out/tiny-lora --out out/demo-merged
./tune inspect out/demo-merged | head -3
