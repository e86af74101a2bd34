// Next-token logits of llama.cpp (the prebuilt libllama of npm's node-llama-cpp) at every position of a prompt,
// for many GGUF files in one node process.
//
//   node oracle/logits.mjs jobs.json
//
// jobs.json is a JSON array of {"model": "x.gguf", "tokens": [ids...], "out": "x.f32"}, each optionally with
// "lora": "adapter.gguf" (a GGUF LoRA adapter applied to the context at scale 1). For each job the model is loaded on
// the CPU, the tokens are evaluated as given (no BOS is added) with an F32 KV cache (the default F16 cache alone costs
// ~5e-4 relative), and the logits are written to "out" as raw little-endian float32 [tokens, n_vocab]. Standard
// output gets one JSON line per job: {"model", "lora", "vocab", "tokens"}. A model or adapter that fails to load exits 1 with
// llama.cpp's own log lines, which are the only place the real reason appears.
import { readFileSync, writeFileSync } from "node:fs";
import { getLlama, LlamaLogLevel } from "node-llama-cpp";

const [jobsPath] = process.argv.slice(2);
if (!jobsPath) {
  process.stderr.write("usage: node oracle/logits.mjs jobs.json\n");
  process.exit(2);
}
const jobs = JSON.parse(readFileSync(jobsPath, "utf8"));

const log = [];
const llama = await getLlama({
  gpu: false,
  build: "never",
  logLevel: LlamaLogLevel.warn,
  logger: (level, message) => log.push(`${level}: ${message}`),
});

for (const job of jobs) {
  let model;
  try {
    model = await llama.loadModel({ modelPath: job.model, gpuLayers: 0 });
  } catch (e) {
    process.stderr.write(`${job.model}: ${e.message}\n${log.join("")}\n`);
    process.exit(1);
  }
  let context;
  try {
    context = await model.createContext({
      contextSize: Math.max(64, job.tokens.length),
      batchSize: Math.max(64, job.tokens.length),
      threads: 2,
      flashAttention: false,
      experimentalKvCacheKeyType: "F32",
      experimentalKvCacheValueType: "F32",
      ...(job.lora ? { lora: { adapters: [{ filePath: job.lora, scale: 1 }] } } : {}),
    });
  } catch (e) {
    process.stderr.write(`${job.model}${job.lora ? ` + ${job.lora}` : ""}: ${e.message}\n${log.join("")}\n`);
    process.exit(1);
  }
  const sequence = context.getSequence();
  const input = job.tokens.map((t) => [t, { generateNext: { logits: true } }]);
  const results = await sequence.controlledEvaluate(input);
  const vocab = model.tokens.count ?? model.fileInfo.metadata.tokenizer.ggml.tokens.length;
  const logits = new Float32Array(job.tokens.length * vocab);
  results.forEach((result, position) => {
    const row = result?.next?.logits;
    if (!row || row.size !== vocab) {
      process.stderr.write(`${job.model}: position ${position}: expected ${vocab} logits, got ${row?.size}\n`);
      process.exit(1);
    }
    for (const [token, value] of row) logits[position * vocab + token] = value;
  });
  writeFileSync(job.out, Buffer.from(logits.buffer));
  process.stdout.write(JSON.stringify({ model: job.model, lora: job.lora ?? null, vocab, tokens: job.tokens.length }) + "\n");
  await context.dispose();
  await model.dispose();
  log.length = 0;
}
await llama.dispose();
