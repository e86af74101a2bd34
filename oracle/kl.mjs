// Mean KL divergence of next-token distributions: llama.cpp (the prebuilt libllama of npm's node-llama-cpp, CPU,
// F32 KV cache) runs a reference GGUF and each candidate GGUF on the same tokens, and this reports, over all
// positions, the mean of KL(p_reference ‖ p_candidate) and how often the top token agrees.
//
//   node oracle/kl.mjs job.json
//
// job.json is {"reference": "f32.gguf", "candidates": ["q8_0.gguf", ...], "text": "..."}: the text is tokenised
// with the reference model's vocabulary (BOS first). Standard output gets one JSON object:
// {"tokens": n, "results": [{"model", "mean_kl", "max_kl", "top1_agreement"}]}.
import { readFileSync } from "node:fs";
import { getLlama, LlamaLogLevel } from "node-llama-cpp";

const [jobPath] = process.argv.slice(2);
if (!jobPath) {
  process.stderr.write("usage: node oracle/kl.mjs job.json\n");
  process.exit(2);
}
const job = JSON.parse(readFileSync(jobPath, "utf8"));
const log = [];
const llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.warn, logger: (l, m) => log.push(`${l}: ${m}`) });

// Log-probabilities at every position, [positions][vocab], as float64 log-softmax of the logits.
async function logProbabilities(modelPath, tokens) {
  let model;
  try {
    model = await llama.loadModel({ modelPath, gpuLayers: 0 });
  } catch (e) {
    process.stderr.write(`${modelPath}: ${e.message}\n${log.join("")}\n`);
    process.exit(1);
  }
  const context = await model.createContext({
    contextSize: Math.max(64, tokens.length), batchSize: Math.max(64, tokens.length), threads: 2, flashAttention: false,
    experimentalKvCacheKeyType: "F32", experimentalKvCacheValueType: "F32",
  });
  const results = await context.getSequence().controlledEvaluate(tokens.map((t) => [t, { generateNext: { logits: true } }]));
  const vocab = model.tokens.count ?? model.fileInfo.metadata.tokenizer.ggml.tokens.length;
  const rows = results.map((r) => {
    const row = new Float64Array(vocab);
    for (const [token, value] of r.next.logits) row[token] = value;
    let max = -Infinity;
    for (const v of row) max = Math.max(max, v);
    let sum = 0;
    for (const v of row) sum += Math.exp(v - max);
    const logSum = max + Math.log(sum);
    for (let i = 0; i < vocab; i++) row[i] -= logSum;
    return row;
  });
  await context.dispose();
  await model.dispose();
  return rows;
}

const vocabModel = await llama.loadModel({ modelPath: job.reference, vocabOnly: true });
const tokens = [vocabModel.tokens.bos, ...vocabModel.tokenize(job.text, false)];
await vocabModel.dispose();

const argmax = (row) => row.reduce((best, v, i) => (v > row[best] ? i : best), 0);
const reference = await logProbabilities(job.reference, tokens);
const results = [];
for (const candidate of job.candidates) {
  const rows = await logProbabilities(candidate, tokens);
  let total = 0, max = 0, top1 = 0;
  rows.forEach((q, position) => {
    const p = reference[position];
    let kl = 0;
    for (let i = 0; i < p.length; i++) kl += Math.exp(p[i]) * (p[i] - q[i]);
    total += kl;
    max = Math.max(max, kl);
    if (argmax(p) === argmax(q)) top1++;
  });
  results.push({ model: candidate, mean_kl: total / rows.length, max_kl: max, top1_agreement: top1 / rows.length });
}
process.stdout.write(JSON.stringify({ tokens: tokens.length, results }) + "\n");
await llama.dispose();
