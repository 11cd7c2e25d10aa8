/**
 * The head over the counted rows only, on the bundled demo (model and chat data, the demo's
 * flags: seq 128, greedy packing, batch 1, mesp, one thread): how many rows of the padded
 * batches count, the head FLOPs that saves, the head's share of a step's FLOPs, and the step
 * time gathered vs ungathered, interleaved in one process.
 *
 *   npx deno run -A bench/head_rows.ts [--steps 16] [--out bench/results/head_rows.md]
 *
 * FLOPs are counted as 2 per multiply-add of the GEMMs (mesp: each block's lean forward, its
 * recompute and its backward; the head's logits and its dx, both over V × D per row).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { BatchSource, paddedLength } from "../src/data/dataset.ts";
import { loadRowsFile } from "../src/deno/dataset.ts";
import { bundledQwenTokenizerDir, loadTokenizerDir } from "../src/deno/tokenizer.ts";
import { loadKernelsSync } from "../src/kernels/wasm.ts";
import { countTargets } from "../src/data/labels.ts";
import { LINEAR_NAMES } from "../src/model/weights.ts";
import { LoraTrainingSession } from "../src/methods/session.ts";
import { createDemoStore, DEMO_MODEL_CONFIG } from "../src/model/demo_model.ts";
import { demoDataPath } from "../src/train/demo.ts";
import { writeFileAtomic } from "../src/deno/fs.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    steps: { type: "string", default: "16" },
    out: { type: "string" },
  },
});
const steps = Number(values.steps);
const c = DEMO_MODEL_CONFIG;
const SEQ = 128;

const tokenizer = await loadTokenizerDir(bundledQwenTokenizerDir());
const rows = await loadRowsFile(demoDataPath(), {
  tokenizer,
  vocabSize: c.vocabSize,
  seqLen: SEQ,
  packing: "greedy",
  maxLineBytes: 8 << 20,
});
const seqLen = paddedLength(rows.rows, SEQ);
const padId = tokenizer.padTokenId;

// One epoch of the demo's batches: rows through the head before (all) and now (counted).
const epoch = new BatchSource(rows.rows, { batchSize: 1, seqLen, padId, seed: 0, shuffle: false });
let all = 0, counted = 0;
for (let i = 0; i < rows.rows.length; i++) {
  const b = epoch.next();
  all += b.batchSize * b.seqLen;
  counted += countTargets(b, c.vocabSize);
}
const D = c.hiddenSize, I = c.intermediateSize, V = c.vocabSize;
const Dq = c.numHeads * c.headDim, Dkv = c.numKvHeads * c.headDim;
// Per token row: one block forward's GEMMs (base only; LoRA at r 8 is < 3 % here), attention
// over a causal T (half the T × T scores on average), then mesp = 3 forwards' worth.
const blockFwd = 2 * (D * Dq + 2 * D * Dkv + Dq * D + 3 * D * I) + 2 * 2 * (seqLen / 2) * Dq;
const blocks = 3 * blockFwd * c.numLayers;
const headPerRow = 2 * 2 * D * V;
const stepBefore = all * (blocks + headPerRow);
const stepNow = all * blocks + counted * headPerRow;

// Interleaved step times on the same batches: gathered head, then the all-rows head.
const { kernels, arena } = loadKernelsSync();
const store = createDemoStore(kernels, arena, "int4");
const session = (allRows: boolean) => {
  const s = new LoraTrainingSession({
    store,
    kernels,
    arena,
    method: "mesp",
    seed: 1,
    maxGradNorm: 0,
    lora: { rank: 8, alpha: 16, targets: [...LINEAR_NAMES] },
    optimizer: { kind: "adamw", lr: 3e-3, weightDecay: 0 },
  });
  s.model.headAllRows = allRows;
  return s;
};
const sessions = [session(false), session(true)];
const times = [0, 0];
const source = new BatchSource(rows.rows, { batchSize: 1, seqLen, padId, seed: 1 });
for (let t = 0; t < steps + 1; t++) {
  const b = source.next();
  for (let i = 0; i < 2; i++) {
    const t0 = performance.now();
    await sessions[i].step([b], 3e-3);
    if (t > 0) times[i] += performance.now() - t0; // the first step warms up
  }
}
const cpu = (await Deno.readTextFile("/proc/cpuinfo").catch(() => "")).match(
  /model name\s*:\s*(.*)/,
)?.[1] ?? "unknown CPU";
const pct = (x: number) => `${(100 * x).toFixed(1)} %`;
const report = [
  `# The head over the counted rows only, on the bundled demo`,
  "",
  `\`npx deno run -A bench/head_rows.ts --steps ${steps}\` on ${cpu} (machine shared with other ` +
  `jobs: times are a ratio measured interleaved in one process).`,
  "",
  `Demo model (hidden ${D}, ${c.numLayers} layers, vocab ${V}), \`examples/data/demo_chat.jsonl\` ` +
  `with the bundled Qwen2.5 tokenizer, seq ${SEQ} (padded to ${seqLen}), greedy packing, batch 1:`,
  "",
  "| | value |",
  "|---|---|",
  `| rows in one epoch's batches | ${all} (${rows.rows.length} batches) |`,
  `| rows whose target counts | ${counted} (${pct(counted / all)}) |`,
  `| head FLOPs saved | ${pct(1 - counted / all)} |`,
  `| head share of a mesp step's FLOPs, all rows | ${pct((all * headPerRow) / stepBefore)} |`,
  `| step FLOPs saved | ${pct(1 - stepNow / stepBefore)} |`,
  `| mesp step time, counted rows / all rows (${steps} steps each, interleaved) | ` +
  `${(times[0] / times[1]).toFixed(3)} (${(times[0] / steps).toFixed(1)} vs ${
    (times[1] / steps).toFixed(1)
  } ms) |`,
  "",
].join("\n");
console.log(report);
if (values.out) await writeFileAtomic(values.out, new TextEncoder().encode(report));
