// Single-stream prefill and decode speed of llama.cpp (the prebuilt libllama of npm's node-llama-cpp, CPU only) on a
// GGUF file, to set beside `Tune.Bench infer --gguf` on the same file and thread count.
//
//   node oracle/bench.mjs model.gguf [--threads 2] [--prefill 128] [--decode 32] [--repeat 3]
//
// The prompt is `prefill` random token ids (no BOS), evaluated as one batch; then `decode` single-token steps, each
// feeding a random id. Only the last prompt token and every decode step ask for a next token (greedy, sampled inside
// llama.cpp), so the output layer runs once per step, as in serving. One warm-up round, then `repeat` rounds, each on
// an emptied sequence; the best round is printed because on a shared machine competing load only ever slows a round.
import { getLlama, LlamaLogLevel } from "node-llama-cpp";

const [modelPath, ...rest] = process.argv.slice(2);
if (!modelPath) {
  process.stderr.write("usage: node oracle/bench.mjs model.gguf [--threads N] [--prefill N] [--decode N] [--repeat N]\n");
  process.exit(2);
}
const options = { threads: 2, prefill: 128, decode: 32, repeat: 3 };
for (let i = 0; i < rest.length; i += 2) {
  const name = rest[i].replace(/^--/, "");
  if (!(name in options) || rest[i + 1] === undefined) throw new Error(`cannot read option ${rest[i]}`);
  options[name] = Number(rest[i + 1]);
}

const log = [];
// maxThreads 0: the context's `threads` is then the number llama.cpp really uses, not a hint capped by a pool.
const llama = await getLlama({
  gpu: false,
  build: "never",
  maxThreads: 0,
  logLevel: LlamaLogLevel.warn,
  logger: (level, message) => log.push(`${level}: ${message}`),
});
let clock = performance.now();
const model = await llama.loadModel({ modelPath, gpuLayers: 0 }).catch((e) => {
  process.stderr.write(`${modelPath}: ${e.message}\n${log.join("")}\n`);
  process.exit(1);
});
const loadSeconds = (performance.now() - clock) / 1000;
const context = await model.createContext({
  contextSize: options.prefill + options.decode + 8,
  batchSize: options.prefill,
  threads: { ideal: options.threads, min: options.threads },
  flashAttention: false,
});
const sequence = context.getSequence();
const vocab = model.tokens.count ?? model.fileInfo.metadata.tokenizer.ggml.tokens.length;
let seed = 1;
// A small LCG so the ids are the same on every run without a dependency; any id below the vocabulary will do.
const randomToken = () => (seed = (seed * 1103515245 + 12345) % 2147483648) % Math.min(vocab, 100000);

async function round() {
  await sequence.clearHistory();
  const prompt = Array.from({ length: options.prefill }, randomToken);
  const input = prompt.map((t, i) => (i === prompt.length - 1 ? [t, { generateNext: { token: true } }] : t));
  let start = performance.now();
  await sequence.controlledEvaluate(input);
  const prefill = options.prefill / ((performance.now() - start) / 1000);
  start = performance.now();
  for (let i = 0; i < options.decode; i++) await sequence.controlledEvaluate([[randomToken(), { generateNext: { token: true } }]]);
  const decode = options.decode / ((performance.now() - start) / 1000);
  return { prefill, decode };
}

await round();
const rounds = [];
for (let r = 0; r < Math.max(1, options.repeat); r++) rounds.push(await round());
const best = (key) => Math.max(...rounds.map((r) => r[key]));
const list = (key, digits) => rounds.map((r) => r[key].toFixed(digits)).join(", ");
process.stdout.write(
  `| llama.cpp | ${modelPath.split("/").pop()} | ${context.currentThreads} | prefill ${options.prefill}: ${best("prefill").toFixed(1)} tok/s (rounds ${list("prefill", 1)}) | ` +
    `decode: ${best("decode").toFixed(2)} tok/s (rounds ${list("decode", 2)}) | peak RSS ${(process.resourceUsage().maxRSS / 1048576).toFixed(2)} GiB | load ${loadSeconds.toFixed(1)} s |\n`,
);
await context.dispose();
await model.dispose();
await llama.dispose();
