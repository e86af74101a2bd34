// Tokenizes many strings with llama.cpp (the prebuilt libllama of npm's node-llama-cpp), so a test can compare a
// whole corpus in one process start.
//
//   node oracle/tokenize.mjs <vocab.gguf> [--special] [strings.json]
//
// Reads a JSON array of strings from strings.json (or stdin) and writes a JSON array with one array of token ids
// per string to stdout. No BOS/EOS is added. Without --special, control-token text stays text (llama.cpp's
// parse_special = false, which still matches user-defined added tokens); with it, control tokens are recognised.
import { readFileSync } from "node:fs";
import { getLlama } from "node-llama-cpp";

const args = process.argv.slice(2);
const special = args.includes("--special");
const [modelPath, inputPath] = args.filter((a) => a !== "--special");
if (!modelPath) {
  process.stderr.write("usage: node oracle/tokenize.mjs <vocab.gguf> [--special] [strings.json]\n");
  process.exit(2);
}

const texts = JSON.parse(readFileSync(inputPath ?? 0, "utf8"));
if (!Array.isArray(texts) || texts.some((t) => typeof t !== "string")) {
  process.stderr.write("input must be a JSON array of strings\n");
  process.exit(2);
}

const llama = await getLlama({ gpu: false, build: "never", logLevel: "error" });
const model = await llama.loadModel({ modelPath, vocabOnly: true });
const ids = texts.map((text) => Array.from(model.tokenize(text, special)));
await model.dispose();
await llama.dispose();
process.stdout.write(JSON.stringify(ids));
