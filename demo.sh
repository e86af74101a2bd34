#!/usr/bin/env bash
# The main job on a built-in default, end to end on this machine's CPU: make a small random DeepSeek-V2 model in the
# Hugging Face layout, fine-tune it with LoRA on a tiny chat set (loss before and after), generate with the adapter
# (chat and fill-in-the-middle), merge the adapter into a full checkpoint, convert that to GGUF and check that
# llama.cpp (npm's node-llama-cpp, installed into oracle/) computes the same next-token distribution as Tune, then
# quantise to Q4_K_M and measure in llama.cpp how far its distribution moves from the f32 file (mean KL), and serve
# the Q4_K_M file over HTTP: one chat and one fill-in-the-middle request through the OpenAI-compatible API.
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
./tune convert --model out/demo-merged --out out/demo-merged.gguf --type f32
oracle/setup.sh >/dev/null
ids=100000,1558,962,7,64,11,270,1780,185
./tune forward --model out/demo-merged --ids "$ids" --out out/tune-logits.f32 --device cpu
printf '[{"model": "out/demo-merged.gguf", "tokens": [%s], "out": "out/llama-logits.f32"}]' "$ids" > out/llama-job.json
node oracle/logits.mjs out/llama-job.json >/dev/null
node oracle/compare-logits.mjs out/tune-logits.f32 out/llama-logits.f32 102400
./tune quantize --input out/demo-merged.gguf --out out/demo-merged-q4_k_m.gguf --type q4_k_m --report out/q4_k_m-report.json
printf '{"reference": "out/demo-merged.gguf", "candidates": ["out/demo-merged-q4_k_m.gguf"], "text": %s}' \
  '"def fibonacci(n):\n    if n < 2:\n        return n\n    return fibonacci(n - 1) + fibonacci(n - 2)\n"' > out/kl-job.json
echo "Q4_K_M against f32 in llama.cpp (random weights amplify rounding; a trained model moves far less):"
node oracle/kl.mjs out/kl-job.json
echo "--- serve the Q4_K_M file (weights stay in their blocks) and ask it over HTTP: OpenAI chat, then DeepSeek-style FIM"
./tune serve --model out/demo-merged-q4_k_m.gguf --port 0 2> out/serve.log &
server=$!
trap 'kill "$server" 2>/dev/null || true' EXIT
for _ in $(seq 1 120); do grep -q "^serving" out/serve.log && break; sleep 0.5; done
address=$(grep -o 'on http://[^ ]*' out/serve.log | head -1 | cut -c4-)
address=${address%/}
node -e '
const base = process.argv[1];
const post = async (path, body) => (await fetch(base + path, {method: "POST", headers: {"Content-Type": "application/json"},
  body: JSON.stringify(body)})).json();
(async () => {
  const chat = await post("/v1/chat/completions", {messages: [{role: "user", content: "Write a function that reverses a string."}],
    max_tokens: 16, temperature: 0});
  console.log("chat  :", JSON.stringify(chat.choices[0].message.content), `(${chat.usage.completion_tokens} tokens, ${chat.choices[0].finish_reason})`);
  const fim = await post("/v1/completions", {prompt: "def add(a, b):\n    ", suffix: "\n    return c", max_tokens: 16, temperature: 0});
  console.log("FIM   :", JSON.stringify(fim.choices[0].text), `(${fim.usage.completion_tokens} tokens, ${fim.choices[0].finish_reason})`);
})().catch(e => { console.error(e); process.exit(1); });
' "$address"
kill "$server"
wait "$server" 2>/dev/null || true
