// Compares two raw little-endian float32 logit files [positions, vocab] (Tune's `tune forward --out` and
// oracle/logits.mjs's output) and prints one line: top-1 agreement and the largest differences.
//
//   node oracle/compare-logits.mjs tune.f32 llama.f32 VOCAB
import { readFileSync } from "node:fs";

const [aPath, bPath, vocabText] = process.argv.slice(2);
const vocab = Number(vocabText);
if (!aPath || !bPath || !(vocab > 0)) {
  process.stderr.write("usage: node oracle/compare-logits.mjs a.f32 b.f32 VOCAB\n");
  process.exit(2);
}
const read = (path) => { const b = readFileSync(path); return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4); };
const a = read(aPath), b = read(bPath);
if (a.length !== b.length || a.length % vocab !== 0) {
  process.stderr.write(`${aPath} has ${a.length} values, ${bPath} ${b.length}; expected equal multiples of ${vocab}\n`);
  process.exit(1);
}
const softmax = (row) => { const m = Math.max(...row); const e = row.map((x) => Math.exp(x - m)); const s = e.reduce((x, y) => x + y, 0); return e.map((x) => x / s); };
const argmax = (row) => row.reduce((best, x, i) => (x > row[best] ? i : best), 0);
let same = 0, maxLogit = 0, maxProb = 0;
const positions = a.length / vocab;
for (let t = 0; t < positions; t++) {
  const ra = Array.from(a.subarray(t * vocab, (t + 1) * vocab)), rb = Array.from(b.subarray(t * vocab, (t + 1) * vocab));
  if (argmax(ra) === argmax(rb)) same++;
  const pa = softmax(ra), pb = softmax(rb);
  for (let v = 0; v < vocab; v++) {
    maxLogit = Math.max(maxLogit, Math.abs(ra[v] - rb[v]));
    maxProb = Math.max(maxProb, Math.abs(pa[v] - pb[v]));
  }
}
console.log(`llama.cpp vs Tune: same top-1 at ${same}/${positions} positions, max |Δlogit| ${maxLogit.toExponential(2)}, max |Δp| ${maxProb.toExponential(2)}`);
process.exit(same === positions ? 0 : 1);
