/**
 * The memory plan against the arena: for every method, both weight stores (resident, streamed),
 * four architectures, kept tapes and block checkpoints in memory and spilled, the planned bytes
 * of a session are the measured high-water above the store exactly (two steps, so a second step
 * that grew memory would show). The plan sums the peaks replayed from the block and head buffer
 * tables, so a block function that allocates other than its table says breaks this test.
 */
import assert from "node:assert/strict";
import { makeCheckpoint } from "../tools/make_checkpoint.ts";
import { openModelDir } from "../src/deno/model_source.ts";
import { presetModelConfig } from "../src/io/presets.ts";
import { loadKernelsSync } from "../src/kernels/wasm.ts";
import type { KernelVariant } from "../src/kernels/wasm.ts";
import type { CheckpointSpill } from "../src/methods/block_checkpoints.ts";
import { planMemory } from "../src/methods/memory_plan.ts";
import type { MethodName } from "../src/methods/registry.ts";
import { LoraTrainingSession } from "../src/methods/session.ts";
import type { LinearName } from "../src/model/weights.ts";
import { LINEAR_NAMES } from "../src/model/weights.ts";
import { Rng } from "../src/runtime/rng.ts";

const VARIANT = (Deno.env.get("SLIMTUNE_KERNELS") ?? "reference") as KernelVariant;
/**
 * [seqLen, batch, MLP chunk rows]: 14 rows in chunks of 4, 4, 4 and 2; 33 rows in one chunk (a
 * step whose lean forward outgrows the head).
 */
const SHAPES = [[7, 2, 4], [33, 1, 64]] as const;
const HEAD_ROWS = 48;

/** A spill that keeps each block's input in a JS array. */
function memorySpill(): CheckpointSpill {
  const held = new Map<number, Float32Array>();
  return {
    save: (block, input) => Promise.resolve(void held.set(block, input.slice())),
    load: (block, into) => Promise.resolve(into.set(held.get(block)!)),
  };
}

interface Case {
  method: MethodName;
  keptTapes: number;
  spill: boolean;
  targets: readonly LinearName[];
}

/**
 * The cases of one model of `numLayers` layers: every method; mebp and mesp keeping no tape, one
 * and every one; checkpoints in memory and spilled.
 */
function cases(numLayers: number): Case[] {
  const out: Case[] = [];
  const ALL = LINEAR_NAMES;
  for (const method of ["full", "mebp", "mesp", "lcsb", "mezo"] as const) {
    const kept = method === "mebp" || method === "mesp" ? [0, 1, numLayers] : [0];
    const spills = method === "full" || method === "mezo" ? [false] : [false, true];
    for (const keptTapes of kept) {
      for (const spill of spills) out.push({ method, keptTapes, spill, targets: ALL });
    }
  }
  // Adapters on some linears only: the temporaries of the others are not planned.
  for (const method of ["full", "mebp", "mesp", "mezo"] as const) {
    out.push({ method, keptTapes: 0, spill: false, targets: ["q", "v"] });
    out.push({ method, keptTapes: 0, spill: false, targets: ["down"] });
  }
  return out;
}

for (const arch of ["qwen2", "llama", "qwen3", "gemma3"] as const) {
  for (const weights of ["resident", "streamed"] as const) {
    Deno.test(`memory plan = measured arena high-water exactly: ${arch}, ${weights} store`, async () => {
      const dir = await Deno.makeTempDir({ prefix: "slimtune-plan-measured-" });
      try {
        await makeCheckpoint({ preset: `tiny-${arch}`, out: dir, seed: 5, dtype: "f16" });
        for (const c of cases(presetModelConfig(`tiny-${arch}`).numLayers)) {
          for (const [SEQ, BATCH, MLP_ROWS] of SHAPES) {
            const { kernels, arena } = loadKernelsSync({ variant: VARIANT });
            const store = await openModelDir({
              source: dir,
              quant: "int4",
              weights,
              kernels,
              arena,
              headChunkRows: HEAD_ROWS,
              cacheDir: `${dir}/cache`,
            });
            try {
              const config = store.config;
              const lora = { rank: 4, alpha: 8, targets: [...c.targets] };
              const base = arena.used;
              // Loading the store may have reached higher (its temporaries are gone): the
              // session's high-water is measured from here.
              arena.highWater = base;
              const s = new LoraTrainingSession({
                store,
                kernels,
                arena,
                method: c.method,
                seed: 1,
                maxGradNorm: 0,
                lora,
                optimizer: { kind: "adamw", lr: 1e-3, weightDecay: 0 },
                headChunkRows: HEAD_ROWS,
                mlpChunkRows: MLP_ROWS,
                keptTapes: c.keptTapes,
                checkpoints: c.spill ? memorySpill() : "memory",
                lcsb: c.method === "lcsb" ? { groups: 2, pattern: "strided" } : undefined,
              });
              const rng = new Rng(SEQ);
              const ids = Int32Array.from({ length: SEQ * BATCH }, () => rng.nextU32() % 300);
              const batch = { inputIds: ids, labels: ids.slice(), batchSize: BATCH, seqLen: SEQ };
              await s.step([batch], 1e-3);
              await s.step([batch], 1e-3);
              const plan = planMemory({
                config,
                method: c.method,
                seqLen: SEQ,
                batchSize: BATCH,
                lora,
                optimizer: "adamw",
                headChunkRows: HEAD_ROWS,
                mlpChunkRows: MLP_ROWS,
                keptTapes: c.keptTapes,
                checkpoints: c.spill ? "spill" : "memory",
                lcsb: c.method === "lcsb" ? { groups: 2, pattern: "strided" } : undefined,
              });
              const what =
                `${arch} ${weights} ${c.method} T ${SEQ} B ${BATCH} keeping ${c.keptTapes}` +
                `${c.spill ? " spilled" : ""} targets ${c.targets.join(",")}`;
              const memory = s.memory();
              assert.equal(memory.grewLastStep, false, what);
              assert.equal(memory.wasmHighWater - base, plan.total, what);
            } finally {
              await store.close();
            }
          }
        }
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    });
  }
}
