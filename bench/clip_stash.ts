/**
 * What clipping through the bf16 gradient stash (`--clip-stash bf16`, the default) does to the
 * update, against the exact path (`--clip-stash f32`, a whole-model f32 gradient buffer), and
 * what it saves. A random-weight model with Qwen2.5-0.5B's widths (hidden 896, intermediate
 * 4864, 14/2 heads, vocab 151,936, int4 base) and `--layers` blocks, LoRA r 8 on all 7
 * projections, mesp, one sequence of `--seq` random tokens per step, clipping at
 * `--max-grad-norm` (below the gradient norm, so every step clips). Both sessions start from the
 * same adapters (B ~ N(0, 0.02) so both halves get gradients) and see the same batches.
 *
 * Reported per optimizer: the max relative difference of the update
 * max |Δ_bf16 − Δ_f32| / max |Δ_f32| after the first step and after `--steps` steps
 * (Δ = adapters minus their start), the global norms (equal: both sum f32 gradients), and the
 * planned gradient bytes of each path at the 0.5B shape (24 layers, seq 256).
 *
 *   npx deno run -A bench/clip_stash.ts [--layers 2] [--seq 64] [--steps 5] [--max-grad-norm 0.1]
 *       [--out bench/results]
 *
 * Writes clip-stash.md.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { loadKernelsSync } from "../src/kernels/wasm.ts";
import { LoraTrainingSession } from "../src/methods/session.ts";
import type { ModelConfig } from "../src/model/config.ts";
import { planMemory } from "../src/methods/memory_plan.ts";
import { presetModelConfig } from "../src/io/presets.ts";
import { createRandomWeightStore } from "../src/model/random_weights.ts";
import type { OptimizerKind } from "../src/optim/optimizer.ts";
import { Rng } from "../src/runtime/rng.ts";

const TARGETS = ["q", "k", "v", "o", "gate", "up", "down"] as const;

const QWEN05: ModelConfig = presetModelConfig("qwen2.5-0.5b");

function updateGap(
  a: Map<string, { data: Float32Array }>,
  b: Map<string, { data: Float32Array }>,
  init: Map<string, { data: Float32Array }>,
): number {
  let gap = 0, largest = 0;
  for (const [name, t] of b) {
    const x = a.get(name)!.data, p0 = init.get(name)!.data;
    for (let i = 0; i < t.data.length; i++) {
      gap = Math.max(gap, Math.abs((x[i] - p0[i]) - (t.data[i] - p0[i])));
      largest = Math.max(largest, Math.abs(t.data[i] - p0[i]));
    }
  }
  return gap / largest;
}

async function main() {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      layers: { type: "string", default: "2" },
      seq: { type: "string", default: "64" },
      steps: { type: "string", default: "5" },
      "max-grad-norm": { type: "string", default: "0.1" },
      out: { type: "string", default: "bench/results" },
    },
  });
  const layers = Number(values.layers), seq = Number(values.seq), steps = Number(values.steps);
  const clip = Number(values["max-grad-norm"]);
  const config = { ...QWEN05, numLayers: layers };
  const lora = { rank: 8, alpha: 16, targets: [...TARGETS] };
  const rows: string[] = [];
  for (const kind of ["sgd", "adamw", "adamw8bit"] as OptimizerKind[]) {
    const lr = kind === "sgd" ? 1e-2 : 1e-3;
    const sessions = (["bf16", "f32"] as const).map((clipStash) => {
      const { kernels, arena } = loadKernelsSync();
      const store = createRandomWeightStore({ config, kernels, arena, seed: 3, quant: "int4" });
      return new LoraTrainingSession({
        store,
        kernels,
        arena,
        method: "mesp",
        lora,
        optimizer: { kind, lr, weightDecay: 0 },
        maxGradNorm: clip,
        clipStash,
        seed: 1,
      });
    });
    const init = sessions[0].loraTensors();
    const rng = new Rng(2);
    for (const [name, t] of init) if (name.includes("lora_B")) rng.fillNormal(t.data, 0.02);
    for (const s of sessions) s.setLoraTensors(init);
    const data = new Rng(4);
    let first = NaN;
    const norms: string[] = [];
    for (let step = 1; step <= steps; step++) {
      const ids = Int32Array.from({ length: seq }, () => data.nextU32() % config.vocabSize);
      const b = { inputIds: ids, labels: ids, batchSize: 1, seqLen: seq };
      const [r16, r32] = [await sessions[0].step([b], lr), await sessions[1].step([b], lr)];
      if (step === 1) {
        first = updateGap(sessions[0].loraTensors(), sessions[1].loraTensors(), init);
        norms.push(`${r16.gradNorm!.toPrecision(6)} / ${r32.gradNorm!.toPrecision(6)}`);
      }
    }
    const last = updateGap(sessions[0].loraTensors(), sessions[1].loraTensors(), init);
    rows.push(
      `| ${kind} | ${lr} | ${first.toExponential(2)} | ${last.toExponential(2)} | ${norms[0]} |`,
    );
    console.log(rows.at(-1));
  }
  const plan = (clipStash: "bf16" | "f32") =>
    planMemory({
      config: QWEN05,
      method: "mesp",
      seqLen: 256,
      batchSize: 1,
      lora,
      optimizer: "adamw",
      maxGradNorm: 1,
      clipStash,
    }).grads;
  const mb = (b: number) => (b / 2 ** 20).toFixed(1);
  const machine = new TextDecoder().decode((await new Deno.Command("lscpu").output()).stdout)
    .split("\n").find((l) => l.startsWith("Model name"))?.split(":")[1].trim() ?? "unknown";
  const L = [
    "# Clipping through the bf16 gradient stash (bench/clip_stash.ts)",
    "",
    `Command: \`npx deno run -A bench/clip_stash.ts ${Deno.args.join(" ")}\`, ${
      new Date().toISOString()
    }, ${machine}. Model: random weights with Qwen2.5-0.5B's widths, ${layers} layers, int4 ` +
    `base, LoRA r 8 on all 7 projections, mesp, one random sequence of ${seq} tokens per step, ` +
    `--max-grad-norm ${clip} (every step clips). Update gap = max |Δ_bf16 − Δ_f32| / max |Δ_f32| ` +
    `over all adapter values, Δ = adapters minus their start.`,
    "",
    `| optimizer | lr | update gap, step 1 | update gap after ${steps} steps | grad norm step 1 (bf16 / f32 path) |`,
    "|---|---|---|---|---|",
    ...rows,
    "",
    `Gradient memory with clipping at Qwen2.5-0.5B (24 layers), r 8: ${mb(plan("bf16"))} MiB ` +
    `with the bf16 stash (one block's f32 slot + a bf16 copy of all gradients) vs ` +
    `${mb(plan("f32"))} MiB for the whole f32 buffer.`,
    "",
  ];
  await Deno.mkdir(values.out, { recursive: true });
  await Deno.writeTextFile(`${values.out}/clip-stash.md`, L.join("\n"));
  console.log(L.join("\n"));
}

await main();
