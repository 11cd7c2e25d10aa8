import assert from "node:assert/strict";
import { type LoadedKernels, loadKernels, loadKernelsSync } from "../kernels/wasm.ts";
import { createRandomWeightStore, tinyConfig } from "../model/random_weights.ts";
import { LINEAR_NAMES } from "../model/weights.ts";
import type { ModelConfig } from "../model/config.ts";
import { Rng } from "../runtime/rng.ts";
import { BlockCheckpoints, checkpointBytes, type CheckpointSpill } from "./block_checkpoints.ts";
import { planMemory } from "./memory_plan.ts";
import type { LcsbSettings } from "./registry.ts";
import { LoraTrainingSession, type MethodName, type SessionOptions } from "./session.ts";

/** A spill that keeps copies in JS arrays and counts its calls. */
class ArraySpill implements CheckpointSpill {
  readonly held = new Map<number, Float32Array>();
  saves = 0;
  loads = 0;
  save(block: number, input: Float32Array): Promise<void> {
    this.saves++;
    this.held.set(block, input.slice());
    return Promise.resolve();
  }
  load(block: number, into: Float32Array): Promise<void> {
    this.loads++;
    const held = this.held.get(block);
    if (!held || held.length !== into.length) throw new Error(`block ${block} not saved`);
    into.set(held);
    return Promise.resolve();
  }
}

const ALL = [...LINEAR_NAMES];
const T = 7;
const BATCH = 2;
const LORA = { rank: 4, alpha: 8, targets: ALL };

function batchFor(config: ModelConfig, seed: number) {
  const rng = new Rng(seed);
  const inputIds = Int32Array.from({ length: BATCH * T }, () => rng.nextU32() % config.vocabSize);
  const labels = inputIds.slice();
  labels[2] = -100;
  return { inputIds, labels, batchSize: BATCH, seqLen: T };
}

interface Case {
  method: MethodName;
  keptTapes?: number;
  lcsb?: LcsbSettings;
}

const CASES: Case[] = [
  { method: "mebp" },
  { method: "mesp" },
  { method: "mebp", keptTapes: 1 },
  { method: "mesp", keptTapes: 2 },
  { method: "lcsb", lcsb: { groups: 2, pattern: "strided" } },
];

/** A session of case `c` on a fresh random store, and the arena top after the store. */
function session(
  loaded: Pick<LoadedKernels, "kernels" | "arena">,
  config: ModelConfig,
  c: Case,
  extra: Partial<SessionOptions>,
): { s: LoraTrainingSession; storeTop: number } {
  const { kernels, arena } = loaded;
  const store = createRandomWeightStore({ config, kernels, arena, seed: 5, quant: "int4" });
  const storeTop = arena.used;
  const s = new LoraTrainingSession({
    store,
    kernels,
    arena,
    method: c.method,
    keptTapes: c.keptTapes,
    lcsb: c.lcsb,
    seed: 2,
    maxGradNorm: 0,
    lora: LORA,
    optimizer: { kind: "adamw", lr: 1e-2, weightDecay: 0 },
    headChunkRows: 64,
    mlpChunkRows: 4,
    ...extra,
  });
  // Non-zero B, so every gradient is non-zero.
  const tensors = s.loraTensors();
  const rng = new Rng(13);
  for (const [name, t] of tensors) if (name.includes("lora_B")) rng.fillNormal(t.data, 0.2);
  s.setLoraTensors(tensors);
  return { s, storeTop };
}

/** Every LoRA gradient's bytes after one accumulation of `batch`, and the loss sum. */
async function gradientBytes(s: LoraTrainingSession, config: ModelConfig) {
  const { lossSum } = await s.accumulateGradients([batchFor(config, 3)]);
  const out = new Map<string, Uint8Array>();
  for (const p of s.lora.params) {
    out.set(p.name, new Uint8Array(s.model.arena.f32(p.grad, p.n).slice().buffer));
  }
  return { lossSum, grads: out };
}

async function assertSpillBitIdentical(
  load: () => Promise<Pick<LoadedKernels, "kernels" | "arena">>,
  what: string,
) {
  for (const arch of ["qwen2", "gemma3"] as const) {
    const config = tinyConfig(arch, 4);
    for (const c of CASES) {
      const name = `${what} ${arch} ${c.method} kept ${c.keptTapes ?? 0}`;
      const memory = await gradientBytes(session(await load(), config, c, {}).s, config);
      const spill = new ArraySpill();
      const spilled = await gradientBytes(
        session(await load(), config, c, { checkpoints: spill }).s,
        config,
      );
      const checkpointed = c.method === "lcsb" ? 2 : 4 - (c.keptTapes ?? 0);
      assert.equal(spill.saves, checkpointed, `${name}: saves`);
      assert.equal(spill.loads, checkpointed, `${name}: loads`);
      assert.equal(spilled.lossSum, memory.lossSum, name);
      let nonZero = 0;
      for (const [tensor, want] of memory.grads) {
        assert.deepEqual(spilled.grads.get(tensor), want, `${name}: ${tensor}`);
        if (want.some((b) => b !== 0)) nonZero++;
      }
      // lcsb leaves the other group's gradients zero; the selected ones are compared non-zero.
      assert.ok(nonZero >= memory.grads.size / 2, `${name}: ${nonZero} non-zero gradients`);
    }
  }
}

Deno.test("spilled checkpoints give the same gradient bits as the arena's (mebp, mesp, lcsb, kept tapes), 1 thread", async () => {
  await assertSpillBitIdentical(() => Promise.resolve(loadKernelsSync()), "1 thread");
});

Deno.test("spilled checkpoints give the same gradient bits with 2 kernel threads (shared memory)", async () => {
  const opened: LoadedKernels[] = [];
  try {
    await assertSpillBitIdentical(async () => {
      const loaded = await loadKernels({ threads: 2, minParallelWork: 0, minParallelRows: 1 });
      opened.push(loaded);
      assert.equal(loaded.threads, 2);
      return loaded;
    }, "2 threads");
  } finally {
    for (const l of opened) l.close();
  }
});

Deno.test("a spill lowers the arena high-water by exactly the planned checkpoints, and the plan holds in both modes", async () => {
  const config = tinyConfig("qwen2", 4);
  const residual = Math.ceil((BATCH * T * config.hiddenSize * 4) / 64) * 64;
  for (const c of CASES) {
    const measured: number[] = [];
    const planned: number[] = [];
    for (const spill of [null, new ArraySpill()]) {
      const { s, storeTop: base } = session(
        loadKernelsSync(),
        config,
        c,
        spill ? { checkpoints: spill } : {},
      );
      // Two steps: lcsb back-propagates both of its groups.
      await s.step([batchFor(config, 4)], 1e-3);
      await s.step([batchFor(config, 4)], 1e-3);
      assert.equal(s.memory().grewLastStep, false);
      const plan = planMemory({
        config,
        method: c.method,
        seqLen: T,
        batchSize: BATCH,
        lora: LORA,
        optimizer: "adamw",
        headChunkRows: 64,
        mlpChunkRows: 4,
        keptTapes: c.keptTapes,
        lcsb: c.lcsb,
        checkpoints: spill ? "spill" : "memory",
      });
      const used = s.memory().wasmHighWater - base;
      const what = `${c.method} kept ${c.keptTapes ?? 0} ${spill ? "spill" : "memory"}`;
      if (c.method === "lcsb") assert.ok(used <= plan.total, `${what}: ${used} > ${plan.total}`);
      else assert.equal(used, plan.total, what);
      measured.push(used);
      planned.push(plan.total);
    }
    const checkpointed = c.method === "lcsb" ? 2 : 4 - (c.keptTapes ?? 0);
    const what = `${c.method} kept ${c.keptTapes ?? 0}`;
    assert.equal(planned[0] - planned[1], (checkpointed - 1) * residual, what);
    assert.equal(measured[0] - measured[1], planned[0] - planned[1], what);
  }
});

Deno.test("checkpoint bytes: one buffer per block in memory, one in all (none for none) with a spill", () => {
  assert.equal(checkpointBytes("memory", 5, 128), 640);
  assert.equal(checkpointBytes("spill", 5, 128), 128);
  assert.equal(checkpointBytes("spill", 0, 128), 0);
  assert.equal(checkpointBytes("memory", 0, 128), 0);
});

Deno.test("BlockCheckpoints: only the checkpointed blocks; with a spill one shared buffer, reloaded", async () => {
  const { arena } = loadKernelsSync({ variant: "reference" });
  const x = arena.allocF32(3);
  const before = arena.used;
  const spill = new ArraySpill();
  const held = new BlockCheckpoints(arena, 3, [0, 2], spill);
  assert.equal(arena.used - before, 64);
  assert.equal(held.has(1), false);
  arena.f32(x, 3).set([1, 2, 3]);
  await held.save(0, x);
  arena.f32(x, 3).set([4, 5, 6]);
  await held.save(2, x);
  assert.deepEqual([...arena.f32(await held.load(2), 3)], [4, 5, 6]);
  assert.deepEqual([...arena.f32(await held.load(0), 3)], [1, 2, 3]);
  await assert.rejects(() => held.save(1, x), /block 1 is not checkpointed/);
  const inMemory = new BlockCheckpoints(arena, 3, [0, 2]);
  assert.equal(arena.used - before, 3 * 64);
  await inMemory.save(2, x);
  arena.f32(x, 3).fill(0);
  assert.deepEqual([...arena.f32(await inMemory.load(2), 3)], [4, 5, 6]);
});

Deno.test("a spill given to a method that checkpoints nothing is refused", () => {
  const config = tinyConfig("qwen2", 2);
  for (const method of ["full", "mezo"] as const) {
    assert.throws(
      () => session(loadKernelsSync(), config, { method }, { checkpoints: new ArraySpill() }),
      new RegExp(`${method} checkpoints no blocks`),
    );
  }
});
