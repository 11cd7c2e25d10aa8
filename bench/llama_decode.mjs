// One llama.cpp decoding run for bench/decode.ts, in Node (node-llama-cpp's prebuilt CPU binary):
//   node bench/llama_decode.mjs MODEL.gguf THREADS NEW_TOKENS ROUNDS ID,ID,...
// Loads the model once, then per round prefills the prompt ids in a fresh sequence and decodes
// NEW_TOKENS greedy tokens; prints one JSON line per round: {"prefillMs","decodeMs","ids"}.
import { getLlama } from "node-llama-cpp";

const [modelPath, threadsArg, newArg, roundsArg, idsArg] = process.argv.slice(2);
const threads = Number(threadsArg);
const newTokens = Number(newArg);
const rounds = Number(roundsArg);
const prompt = idsArg.split(",").map(Number);

const llama = await getLlama({ gpu: false, build: "never", logLevel: "error" });
const model = await llama.loadModel({ modelPath, gpuLayers: 0 });
const context = await model.createContext({
  contextSize: 512,
  batchSize: 512,
  threads: { ideal: threads, min: threads },
  sequences: 1,
});
for (let r = 0; r < rounds; r++) {
  const sequence = context.getSequence();
  const ids = [];
  const t0 = performance.now();
  let tFirst = 0;
  for await (const token of sequence.evaluate(prompt, { temperature: 0 })) {
    ids.push(token);
    if (ids.length === 1) tFirst = performance.now();
    if (ids.length >= newTokens) break;
  }
  const t1 = performance.now();
  console.log(JSON.stringify({ prefillMs: tFirst - t0, decodeMs: t1 - tFirst, ids }));
  sequence.dispose();
}
await context.dispose();
await model.dispose();
await llama.dispose();
