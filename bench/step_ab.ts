/**
 * Whole training steps with this tree's kernels against other revisions', in one process: one
 * session per kernel build on the same checkpoint and tokens (each with its own store and arena),
 * their steps interleaved so that the machine's other load falls on all; the first step of each
 * is a warm-up. Prints seconds per step (best and median of the measured steps),
 * their ratio and whether the two builds gave the same losses.
 *
 *   npx deno run -A tools/make_checkpoint.ts --preset qwen2.5-0.5b --out /tmp/q05 --dtype bf16
 *   npx deno run -A bench/step_ab.ts --model /tmp/q05 [--baseline main[,REV...]] [--method mesp] \
 *     [--weights streamed] [--steps 3] [--seq 256] [--rank 8] [--threads 1]
 *
 * @module
 */
import { parseArgs } from "node:util";
import { openModelDir } from "../src/deno/model_source.ts";
import { type LoadedKernels, loadKernels } from "../src/kernels/wasm.ts";
import { LoraTrainingSession, type MethodName } from "../src/methods/session.ts";
import { LINEAR_NAMES } from "../src/model/weights.ts";
import { Rng } from "../src/runtime/rng.ts";
import { loadBaselineKernels } from "./baseline_kernels.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    model: { type: "string", default: "/tmp/q05" },
    baseline: { type: "string", default: "main" },
    method: { type: "string", default: "mesp" },
    weights: { type: "string", default: "streamed" },
    steps: { type: "string", default: "3" },
    seq: { type: "string", default: "256" },
    rank: { type: "string", default: "8" },
    threads: { type: "string", default: "1" },
  },
});
const steps = Number(values.steps);
const seqLen = Number(values.seq);
const rank = Number(values.rank);
const threads = Number(values.threads);

interface Side {
  label: string;
  loaded: LoadedKernels;
  session: LoraTrainingSession;
  close: () => Promise<void>;
  seconds: number[];
  losses: number[];
}

async function side(label: string, loaded: LoadedKernels): Promise<Side> {
  const { kernels, arena } = loaded;
  const store = await openModelDir({
    source: values.model,
    quant: "int4",
    weights: values.weights as "resident" | "streamed",
    kernels,
    arena,
  });
  const session = new LoraTrainingSession({
    store,
    kernels,
    arena,
    method: values.method as MethodName,
    lora: { rank, alpha: 2 * rank, targets: [...LINEAR_NAMES] },
    optimizer: { kind: "sgd", lr: 1e-4, weightDecay: 0 },
    maxGradNorm: 0,
    seed: 1,
  });
  return { label, loaded, session, close: () => store.close(), seconds: [], losses: [] };
}

// Each revision in --baseline (comma-separated) is one more side; naming this tree's own
// revision there measures the noise floor (the same kernels on two sides).
const sides: Side[] = [];
for (const rev of values.baseline.split(",")) {
  sides.push(await side(`baseline (${rev})`, await loadBaselineKernels(rev, { threads })));
}
sides.push(await side("this tree", await loadKernels({ threads })));
const vocab = sides[0].session.model.config.vocabSize;
const rng = new Rng(7);
const ids = Int32Array.from({ length: seqLen }, () => rng.nextU32() % vocab);
const batch = { inputIds: ids, labels: ids, batchSize: 1, seqLen };
for (let s = 0; s <= steps; s++) {
  // Rotate which side goes first, so none always runs right after the same other one.
  const order = sides.map((_, i) => sides[(i + s) % sides.length]);
  for (const sd of order) {
    const t0 = performance.now();
    const r = await sd.session.step([batch], 1e-4);
    const dt = (performance.now() - t0) / 1e3;
    sd.losses.push(r.loss);
    if (s > 0) sd.seconds.push(dt);
    console.error(`${sd.label} step ${s}: ${dt.toFixed(2)} s, loss ${r.loss}`);
  }
}
const cpu = (await Deno.readTextFile("/proc/cpuinfo").catch(() => "")).match(
  /model name\s*:\s*(.*)/,
)?.[1] ?? "unknown CPU";
const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
console.log(
  `CPU: ${cpu}; ${new Date().toISOString().slice(0, 10)}; load average ${
    Deno.loadavg().map((v) => v.toFixed(2)).join(" ")
  }`,
);
console.log(
  `${values.model}: method ${values.method}, ${values.weights} int4, seq ${seqLen}, rank ${rank}, ` +
    `${threads} thread(s), kernels ${sides.map((s) => s.loaded.variant).join("/")}; ` +
    `${steps} measured steps each after one warm-up, interleaved\n`,
);
console.log("| kernels | best s/step | median s/step |");
console.log("|---|---:|---:|");
for (const s of sides) {
  console.log(
    `| ${s.label} | ${Math.min(...s.seconds).toFixed(2)} | ${median(s.seconds).toFixed(2)} |`,
  );
}
const b = sides[sides.length - 1];
for (const a of sides.slice(0, -1)) {
  console.log(
    `\nspeed-up (${a.label} / this tree): best ${
      (Math.min(...a.seconds) / Math.min(...b.seconds)).toFixed(3)
    }x, median ${(median(a.seconds) / median(b.seconds)).toFixed(3)}x; losses ${
      a.losses.every((l, i) => l === b.losses[i]) ? "identical" : "differ"
    } (${a.losses.map((l, i) => `${l} / ${b.losses[i]}`).join(", ")})`,
  );
}
for (const s of sides) {
  await s.close();
  s.loaded[Symbol.dispose]();
}
