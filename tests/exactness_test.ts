/**
 * Exactness of the training methods on tiny models (hidden 64, GQA 4/2, ragged T = 7, vocab 300,
 * rank 4, batch 2), Qwen2 (q/k/v biases), Llama (llama3 rope scaling), Qwen3 (q/k head norms,
 * head_dim 24 != hidden / heads) and Gemma 3 (sandwich norms, tanh GELU, embedding scale,
 * query_pre_attn_scalar, GQA 4:1, sliding layers of window 3 < T with their own RoPE theta), f32
 * and int4 bases:
 * - full, mebp and mesp gradients agree to a max relative difference of 1e-5 (per tensor:
 *   max |a - b| / max |b|; they differ only in f32 summation order);
 * - all agree with central finite differences of an independent float64 forward
 *   (tests/model_reference_f64.ts) on a sample of A and B entries, with B made non-zero first,
 *   to 1e-5 of the tensor's largest gradient (observed: ~1e-6, the f32 rounding of the model);
 * - lcsb: the selected group's gradients equal the surrogate (finite differences of the f64
 *   forward with identity through non-selected blocks), non-selected gradients are exactly zero,
 *   AdamW momentum still moves them, and the schedule cycles groups (contiguous and strided);
 * - memory: a steady-state step grows nothing, and the high-water stays within the plan.
 */
import assert from "node:assert/strict";
import { loadKernelsSync } from "../src/kernels/wasm.ts";
import type { KernelVariant } from "../src/kernels/wasm.ts";
import type { Batch } from "../src/data/batch.ts";
import type { ModelConfig } from "../src/model/config.ts";
import type { LoraTensors } from "../src/model/lora.ts";
import {
  blockTapeBytes,
  keptTapesWithin,
  type MemoryPlan,
  planMemory,
} from "../src/methods/memory_plan.ts";
import { createRandomWeightStore, tinyConfig } from "../src/model/random_weights.ts";
import { lcsbGradients, lcsbSelectedBlocks } from "../src/methods/lcsb.ts";
import { prepareBatch } from "../src/model/transformer.ts";
import {
  LoraTrainingSession,
  type MethodName,
  type SessionOptions,
} from "../src/methods/session.ts";
import { Rng } from "../src/runtime/rng.ts";
import { LINEAR_NAMES } from "../src/model/weights.ts";
import { readRefModel, type RefLora, refLoss, type Surrogate } from "./model_reference_f64.ts";

/** Kernels for the lcsb/memory tests (SLIMTUNE_KERNELS=relaxed|simd|reference; default reference). */
const VARIANT = (Deno.env.get("SLIMTUNE_KERNELS") ?? "reference") as KernelVariant;
/** The gradient-agreement tests run on the TS reference AND the shipping wasm build. */
const AGREEMENT_VARIANTS: KernelVariant[] = Deno.env.get("SLIMTUNE_KERNELS")
  ? [VARIANT]
  : ["reference", "relaxed"];
const ALL = [...LINEAR_NAMES];
const T = 7;
const BATCH = 2;
/** MLP row chunks of 4 over N = 14 rows: 4 + 4 + 4 + 2, so chunking and its ragged end are tested. */
const MLP_ROWS = 4;

function makeBatch(config: ModelConfig, seed: number): Batch {
  const rng = new Rng(seed);
  const n = BATCH * T;
  const inputIds = Int32Array.from({ length: n }, () => rng.nextU32() % config.vocabSize);
  const labels = inputIds.slice();
  labels[3] = -100; // an ignored label inside the first sequence
  labels[T + 1] = -100; // and one in the second
  return { inputIds, labels, batchSize: BATCH, seqLen: T };
}

interface Setup {
  sessions: Map<MethodName, LoraTrainingSession>;
  options: (method: MethodName) => SessionOptions;
}

/** One store, and sessions for the given methods sharing the same (non-zero B) adapters. */
function setup(
  config: ModelConfig,
  quant: "none" | "int4",
  methods: MethodName[],
  extra: Partial<SessionOptions> = {},
  variant: KernelVariant = VARIANT,
): Setup {
  const { kernels, arena } = loadKernelsSync({ variant });
  const store = createRandomWeightStore({ config, kernels, arena, seed: 7, quant, groupSize: 32 });
  const options = (method: MethodName): SessionOptions => ({
    store,
    kernels,
    arena,
    method,
    seed: 3,
    maxGradNorm: 0,
    lora: { rank: 4, alpha: 8, targets: ALL },
    optimizer: { kind: "adamw", lr: 1e-2, weightDecay: 0 },
    headChunkRows: 64, // 300 = 4 full chunks + a ragged one
    wholeGradients: true, // the tests read every gradient after a backward
    ...extra,
  });
  const sessions = new Map<MethodName, LoraTrainingSession>();
  let tensors: LoraTensors | undefined;
  for (const method of methods) {
    const s = new LoraTrainingSession(options(method));
    if (!tensors) {
      tensors = s.loraTensors();
      const rng = new Rng(11);
      for (const [name, t] of tensors) if (name.includes("lora_B")) rng.fillNormal(t.data, 0.2);
    }
    s.setLoraTensors(tensors);
    s.model.mlpChunkRows = MLP_ROWS;
    sessions.set(method, s);
  }
  return { sessions, options };
}

function grads(s: LoraTrainingSession): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const p of s.lora.params) out.set(p.name, s.model.arena.f32(p.grad, p.n).slice());
  return out;
}

function maxRelDiff(a: Float32Array, b: Float32Array): number {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return scale === 0 ? diff : diff / scale;
}

function refLora(s: LoraTrainingSession): RefLora {
  const t = new Map<string, Float64Array>();
  for (const block of s.lora.blocks) {
    for (const l of Object.values(block)) {
      t.set(`${l.block}.${l.linear}.A`, Float64Array.from(s.model.arena.f32(l.a.ptr, l.a.n)));
      t.set(`${l.block}.${l.linear}.B`, Float64Array.from(s.model.arena.f32(l.b.ptr, l.b.n)));
    }
  }
  return { scale: s.lora.scale, t };
}

/** Picks `count` (tensor key, PEFT name, index) samples, alternating A and B. */
function samples(s: LoraTrainingSession, count: number, seed: number) {
  const rng = new Rng(seed);
  const all = s.lora.blocks.flatMap((b) => Object.values(b));
  const out: { key: string; name: string; index: number }[] = [];
  for (let i = 0; i < count; i++) {
    const l = all[rng.nextU32() % all.length];
    const which = i % 2 === 0 ? "A" : "B";
    const p = which === "A" ? l.a : l.b;
    out.push({ key: `${l.block}.${l.linear}.${which}`, name: p.name, index: rng.nextU32() % p.n });
  }
  return out;
}

/** Central difference of the f64 loss w.r.t. one adapter entry. */
function fd(loss: (l: RefLora) => number, lora: RefLora, key: string, index: number): number {
  const h = 1e-4;
  const t = lora.t.get(key)!;
  const orig = t[index];
  t[index] = orig + h;
  const plus = loss(lora);
  t[index] = orig - h;
  const minus = loss(lora);
  t[index] = orig;
  return (plus - minus) / (2 * h);
}

function tensorMaxAbs(g: Float32Array): number {
  return g.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
}

for (const variant of AGREEMENT_VARIANTS) {
  for (const arch of ["qwen2", "llama", "qwen3", "gemma3"] as const) {
    for (const quant of ["none", "int4"] as const) {
      agreementTest(variant, arch, quant);
    }
  }
}

function agreementTest(
  variant: KernelVariant,
  arch: "qwen2" | "llama" | "qwen3" | "gemma3",
  quant: "none" | "int4",
): void {
  Deno.test(`full, mebp, mesp agree and match f64 finite differences: ${arch} ${quant} (${variant})`, async () => {
    const config = tinyConfig(arch);
    const batch = makeBatch(config, 5);
    const { sessions } = setup(config, quant, ["full", "mebp", "mesp"], {}, variant);
    const results = new Map<MethodName, { grads: Map<string, Float32Array>; loss: number }>();
    for (const [method, s] of sessions) {
      const { lossSum, tokens } = await s.accumulateGradients([batch]);
      results.set(method, { grads: grads(s), loss: lossSum / tokens });
    }
    const full = results.get("full")!;
    for (const method of ["mebp", "mesp"] as const) {
      const r = results.get(method)!;
      // Same maths; the lean forward's row-chunked matmuls may round differently.
      assert.ok(
        Math.abs(r.loss - full.loss) <= 1e-6 * full.loss,
        `${method} loss ${r.loss} vs ${full.loss}`,
      );
      for (const [name, g] of full.grads) {
        assert.ok(tensorMaxAbs(g) > 0, `${name}: gradient is zero`);
        const d = maxRelDiff(r.grads.get(name)!, g);
        assert.ok(d <= 1e-5, `${method} ${name}: max rel diff ${d}`);
      }
    }
    // Independent f64 forward: same loss, and finite differences of it.
    const s = sessions.get("full")!;
    const ref = await readRefModel(s.model.store, s.model.kernels, s.model.arena);
    const lora = refLora(s);
    const loss = (l: RefLora) => refLoss(ref, l, batch.inputIds, batch.labels, BATCH, T);
    const refL = loss(lora);
    assert.ok(Math.abs(refL - full.loss) <= 1e-5 * refL, `loss ${full.loss} vs f64 ${refL}`);
    for (const { key, name, index } of samples(s, 12, 99)) {
      const numeric = fd(loss, lora, key, index);
      const g = full.grads.get(name)!;
      const tol = 1e-5 * tensorMaxAbs(g);
      for (const method of ["full", "mebp", "mesp"] as const) {
        const analytic = results.get(method)!.grads.get(name)![index];
        assert.ok(
          Math.abs(analytic - numeric) <= tol,
          `${method} ${name}[${index}]: analytic ${analytic} vs f64 FD ${numeric} (tol ${tol})`,
        );
      }
    }
  });
}

for (const arch of ["qwen2", "llama", "qwen3", "gemma3"] as const) {
  for (const quant of ["none", "int4"] as const) {
    Deno.test(`kept tapes: mebp and mesp keeping 0, some or all blocks' tapes equal full: ${arch} ${quant}`, async () => {
      const config = tinyConfig(arch);
      const L = config.numLayers;
      const batch = makeBatch(config, 13);
      const { sessions, options } = setup(config, quant, ["full"]);
      const full = sessions.get("full")!;
      const tensors = full.loraTensors();
      const { lossSum: fullLoss } = await full.accumulateGradients([batch]);
      const reference = grads(full);
      for (const method of ["mebp", "mesp"] as const) {
        for (let kept = 0; kept <= L; kept++) {
          const s = new LoraTrainingSession({ ...options(method), keptTapes: kept });
          s.setLoraTensors(tensors);
          s.model.mlpChunkRows = MLP_ROWS;
          const { lossSum } = await s.accumulateGradients([batch]);
          const what = `${method} keeping ${kept} of ${L}`;
          assert.ok(Math.abs(lossSum - fullLoss) <= 1e-6 * fullLoss, `${what}: loss`);
          for (const [name, g] of grads(s)) {
            const ref = reference.get(name)!;
            // Keeping every tape runs full's forward and backward: the same sums, bit for bit.
            if (kept === L) assert.deepEqual(g, ref, `${what} ${name}`);
            const d = maxRelDiff(g, ref);
            assert.ok(d <= 1e-5, `${what} ${name}: max rel diff ${d}`);
          }
        }
      }
      assert.throws(
        () => new LoraTrainingSession({ ...options("mesp"), keptTapes: L + 1 }),
        /0\.\.3/,
      );
      assert.throws(
        () => new LoraTrainingSession({ ...options("lcsb"), keptTapes: 1 }),
        /keeps no tapes/,
      );
    });
  }
}

/**
 * The plan of a session on an int4 tiny model (rank 4, every target, AdamW, head chunks of 64)
 * and the arena bytes it measured over two steps of one random batch.
 */
async function planAndMeasure(
  config: ModelConfig,
  method: MethodName,
  o: { seqLen: number; batchSize: number; mlpChunkRows: number; keptTapes?: number },
): Promise<{ plan: MemoryPlan; measured: number; grewLastStep: boolean }> {
  const { seqLen, batchSize, mlpChunkRows, keptTapes } = o;
  const lora = { rank: 4, alpha: 8, targets: ALL };
  const { kernels, arena } = loadKernelsSync({ variant: VARIANT });
  const store = createRandomWeightStore({ config, kernels, arena, seed: 2, quant: "int4" });
  const base = arena.used;
  const s = new LoraTrainingSession({
    store,
    kernels,
    arena,
    method,
    seed: 1,
    maxGradNorm: 0,
    lora,
    optimizer: { kind: "adamw", lr: 1e-3, weightDecay: 0 },
    headChunkRows: 64,
    mlpChunkRows,
    keptTapes,
  });
  const rng = new Rng(seqLen);
  const ids = Int32Array.from({ length: seqLen * batchSize }, () => rng.nextU32() % 300);
  const batch = { inputIds: ids, labels: ids.slice(), batchSize, seqLen };
  await s.step([batch], 1e-3);
  await s.step([batch], 1e-3);
  const plan = planMemory({
    config,
    method,
    seqLen,
    batchSize,
    lora,
    optimizer: "adamw",
    headChunkRows: 64,
    mlpChunkRows,
    keptTapes,
  });
  const memory = s.memory();
  return { plan, measured: memory.wasmHighWater - base, grewLastStep: memory.grewLastStep };
}

Deno.test("memory plan = measured high-water exactly with kept tapes (mebp, mesp keeping 1 and all blocks)", async () => {
  for (const arch of ["qwen2", "qwen3", "gemma3"] as const) {
    const config = tinyConfig(arch);
    const L = config.numLayers;
    const lora = { rank: 4, alpha: 8, targets: ALL };
    for (const [seqLen, batchSize, mlpChunkRows] of [[7, 2, 4], [33, 1, 64]]) {
      const fullPlan = planMemory({
        config,
        method: "full",
        seqLen,
        batchSize,
        lora,
        optimizer: "adamw",
        headChunkRows: 64,
        mlpChunkRows,
      });
      for (const method of ["mebp", "mesp"] as const) {
        const steps: number[] = [];
        for (const keptTapes of [0, 1, L]) {
          const { plan, measured, grewLastStep } = await planAndMeasure(
            config,
            method,
            { seqLen, batchSize, mlpChunkRows, keptTapes },
          );
          assert.equal(grewLastStep, false);
          const what = `${arch} ${method} keeping ${keptTapes}, T ${seqLen}`;
          assert.equal(plan.keptTapes, keptTapes, what);
          assert.equal(measured, plan.total, what);
          steps.push(plan.step);
        }
        // Keeping every tape is full's memory. Keeping one costs mesp a tape; mebp already had
        // a (recomputed) tape at that point, so the top one can come for free.
        assert.equal(steps[2], fullPlan.step, `${arch} ${method} T ${seqLen}`);
        if (method === "mesp") assert.ok(steps[1] > steps[0], `${arch} T ${seqLen}: ${steps}`);
        else assert.ok(steps[1] >= steps[0], `${arch} mebp T ${seqLen}: ${steps}`);
      }
    }
  }
});

for (const arch of ["qwen2", "llama", "qwen3", "gemma3"] as const) {
  Deno.test(`the head over the counted rows only gives the gradients of the head over every row, bit for bit: ${arch}`, async () => {
    const config = tinyConfig(arch);
    const batch = makeBatch(config, 12);
    // A chat-like mask too: the first 3 tokens of each sequence are prompt.
    for (const b of [0, 1]) batch.labels.fill(-100, b * T, b * T + 3);
    const methods: MethodName[] = ["full", "mebp", "mesp", "lcsb"];
    const gathered = setup(config, "int4", methods, { lcsb: { groups: 1, pattern: "contiguous" } });
    const every = setup(config, "int4", methods, { lcsb: { groups: 1, pattern: "contiguous" } });
    for (const method of methods) {
      const a = gathered.sessions.get(method)!;
      const b = every.sessions.get(method)!;
      b.model.headAllRows = true;
      const ra = await a.accumulateGradients([batch]);
      const rb = await b.accumulateGradients([batch]);
      // Rows 3..5 of the first sequence (label 3 is ignored too), rows 2..5 of the second.
      assert.equal(ra.tokens, 7);
      assert.equal(ra.lossSum, rb.lossSum, `${method} loss`);
      const gb = grads(b);
      for (const [name, g] of grads(a)) {
        assert.ok(tensorMaxAbs(g) > 0, `${method} ${name}: gradient is zero`);
        assert.deepEqual(g, gb.get(name)!, `${method} ${name}`);
      }
    }
  });
}

for (const arch of ["qwen2", "gemma3"] as const) lcsbSurrogateTest(arch);

function lcsbSurrogateTest(arch: "qwen2" | "gemma3"): void {
  Deno.test(`lcsb: top group equals the exact gradient, bottom group equals the f64 surrogate, others exactly zero (${arch})`, async () => {
    const config = tinyConfig(arch, 4);
    const batch = makeBatch(config, 6);
    const { sessions } = setup(config, "none", ["mesp", "lcsb"], {
      lcsb: { groups: 2, pattern: "contiguous" },
    });
    const mesp = sessions.get("mesp")!;
    const lcsb = sessions.get("lcsb")!;
    await mesp.accumulateGradients([batch]);
    const exact = grads(mesp);
    const ref = await readRefModel(lcsb.model.store, lcsb.model.kernels, lcsb.model.arena);
    const lora = refLora(lcsb);
    const blockOf = (name: string) => Number(name.split(".")[4]);
    for (const step of [1, 0]) {
      // Step t back-propagates group t mod 2 = blocks {2t, 2t + 1}.
      const selected = new Set(lcsbSelectedBlocks(step, 4, 2, "contiguous"));
      assert.deepEqual([...selected], step === 1 ? [2, 3] : [0, 1]);
      // Drive the method for `step` directly (the session picks the group from its step count).
      lcsb.lora.zeroGrads();
      const mark = lcsb.model.arena.mark();
      const p = prepareBatch(lcsb.model, batch);
      const tokens = p.count;
      const done: number[] = [];
      await lcsbGradients([...selected])(lcsb.model, p, 1 / tokens, (i) => done.push(i));
      lcsb.model.arena.release(mark);
      assert.deepEqual(done, [3, 2, 1, 0]);
      const g = grads(lcsb);
      for (const [name, v] of g) {
        if (!selected.has(blockOf(name))) {
          assert.ok(v.every((x) => x === 0), `${name}: non-selected gradient not exactly zero`);
        } else if (step === 1) {
          const d = maxRelDiff(v, exact.get(name)!);
          assert.ok(d <= 1e-5, `${name}: top group differs from the exact gradient by ${d}`);
        }
      }
      if (step === 0) {
        // Surrogate: blocks 2, 3 add their frozen (block(x0) - x0); FD through that.
        const record: Float64Array[][] = [];
        refLoss(ref, lora, batch.inputIds, batch.labels, BATCH, T, undefined, record);
        const sur: Surrogate = { selected, consts: record };
        const loss = (l: RefLora) => refLoss(ref, l, batch.inputIds, batch.labels, BATCH, T, sur);
        let checked = 0;
        for (const { key, name, index } of samples(lcsb, 24, 5)) {
          if (!selected.has(blockOf(name))) continue;
          const numeric = fd(loss, lora, key, index);
          const tol = 1e-5 * tensorMaxAbs(g.get(name)!);
          const analytic = g.get(name)![index];
          assert.ok(
            Math.abs(analytic - numeric) <= tol,
            `${name}[${index}]: ${analytic} vs surrogate FD ${numeric}`,
          );
          // The surrogate is not the exact gradient for these blocks (sanity of the test itself).
          checked++;
        }
        assert.ok(checked >= 6, `only ${checked} samples in the selected group`);
        let differs = false;
        for (const [name, v] of g) {
          if (selected.has(blockOf(name)) && maxRelDiff(v, exact.get(name)!) > 1e-3) differs = true;
        }
        assert.ok(differs, "bottom-group surrogate should differ from the exact gradient");
      }
    }
  });
}

Deno.test("lcsb: schedule cycles groups 0,1,2,3,0 (contiguous and strided) and AdamW moves zero-gradient params", async () => {
  assert.deepEqual(
    [0, 1, 2, 3, 4].map((t) => lcsbSelectedBlocks(t, 8, 4, "contiguous")),
    [[0, 1], [2, 3], [4, 5], [6, 7], [0, 1]],
  );
  assert.deepEqual(
    [0, 1, 2, 3, 4].map((t) => lcsbSelectedBlocks(t, 8, 4, "strided")),
    [[0, 4], [1, 5], [2, 6], [3, 7], [0, 4]],
  );
  assert.deepEqual([0, 1, 2].map((t) => lcsbSelectedBlocks(t, 7, 3, "contiguous")), [[0, 1, 2], [
    3,
    4,
  ], [5, 6]]);
  for (const pattern of ["contiguous", "strided"] as const) {
    const config = tinyConfig("llama", 4);
    const batch = makeBatch(config, 8);
    const { sessions } = setup(config, "int4", ["lcsb"], { lcsb: { groups: 4, pattern } });
    const s = sessions.get("lcsb")!;
    const blockParams = (i: number) =>
      s.lora.blockParams(i).map((p) => ({
        p: s.model.arena.f32(p.ptr, p.n).slice(),
        g: s.model.arena.f32(p.grad, p.n).slice(),
      }));
    for (let t = 0; t < 5; t++) {
      const before = [0, 1, 2, 3].map(blockParams);
      await s.step([batch], 1e-2);
      const after = [0, 1, 2, 3].map(blockParams);
      for (let i = 0; i < 4; i++) {
        const selected = i === t % 4; // one block per group, for both patterns
        const nonzero = after[i].some(({ g }) => g.some((x) => x !== 0));
        assert.equal(
          nonzero,
          selected,
          `${pattern} step ${t} block ${i}: gradient non-zero = ${nonzero}`,
        );
        const moved = after[i].some(({ p }, j) => p.some((x, e) => x !== before[i][j].p[e]));
        // Blocks with momentum from an earlier step move even with a zero gradient.
        if (selected || i < t) assert.ok(moved, `${pattern} step ${t} block ${i} did not move`);
        else {assert.ok(
            !moved,
            `${pattern} step ${t} block ${i} moved without ever having a gradient`,
          );}
      }
    }
  }
});

for (const arch of ["qwen2", "qwen3", "gemma3"] as const) {
  memoryTest(arch);
}

function memoryTest(arch: "qwen2" | "qwen3" | "gemma3"): void {
  Deno.test(`memory: steady-state steps do not grow linear memory and stay within the plan (${arch})`, async () => {
    const config = tinyConfig(arch);
    const batch = makeBatch(config, 9);
    // gradAccum 2 (whole gradient buffer; mebp also clips) and 1 (per-block updates: one
    // block-sized gradient slot, none for mezo).
    for (const gradAccum of [2, 1]) {
      for (const method of ["full", "mebp", "mesp", "lcsb", "mezo"] as const) {
        const { kernels, arena } = loadKernelsSync({ variant: VARIANT });
        const store = createRandomWeightStore({
          config,
          kernels,
          arena,
          seed: 7,
          quant: "int4",
          groupSize: 32,
        });
        const base = arena.used;
        // mebp clips: with gradAccum 2 into the whole buffer, with 1 through the bf16 stash.
        const maxGradNorm = method === "mebp" ? 1 : 0;
        const s = new LoraTrainingSession({
          store,
          kernels,
          arena,
          method,
          seed: 1,
          maxGradNorm,
          gradAccum,
          lora: { rank: 4, alpha: 8, targets: ALL },
          optimizer: { kind: "adamw", lr: 1e-3, weightDecay: 0.01 },
          headChunkRows: 64,
          mlpChunkRows: MLP_ROWS,
        });
        const micro = Array.from({ length: gradAccum }, () => batch);
        await s.step([batch], 1e-3);
        for (let i = 0; i < 2; i++) {
          await s.step(micro, 1e-3);
          const what = `${method} gradAccum ${gradAccum}`;
          assert.equal(s.memory().grewLastStep, false, `${what}: step ${i + 2} grew memory`);
        }
        await s.evaluate(batch);
        const plan = planMemory({
          config,
          method,
          seqLen: T,
          batchSize: BATCH,
          lora: { rank: 4, alpha: 8, targets: ALL },
          optimizer: "adamw",
          headChunkRows: 64,
          mlpChunkRows: MLP_ROWS,
          gradAccum,
          maxGradNorm,
        });
        const used = s.memory().wasmHighWater - base;
        const what = `${method} gradAccum ${gradAccum}`;
        assert.ok(used <= plan.total, `${what}: high-water ${used} > plan ${plan.total}`);
        assert.ok(used >= 0.97 * plan.total, `${what}: plan ${plan.total} is loose (used ${used})`);
        assert.equal(s.lora.bytes + s.clipStashBytes, plan.lora + plan.grads, what);
        if (method === "mebp" && gradAccum === 1) assert.ok(s.clipStashBytes > 0, what);
      }
    }
  });
}

Deno.test("memory plan, Qwen2.5-0.5B shapes at seq 256 rank 8: full > mebp > mesp >= lcsb, mesp <= 0.5 mebp", () => {
  const config: ModelConfig = {
    ...tinyConfig("qwen2"),
    hiddenSize: 896,
    intermediateSize: 4864,
    numLayers: 24,
    numHeads: 14,
    numKvHeads: 2,
    headDim: 64,
    vocabSize: 151936,
  };
  const plan = (method: MethodName) =>
    planMemory({
      config,
      method,
      seqLen: 256,
      batchSize: 1,
      lora: { rank: 8, alpha: 16, targets: ALL },
      optimizer: "sgd",
    });
  const [full, mebp, mesp, lcsb] = (["full", "mebp", "mesp", "lcsb"] as const).map(plan);
  assert.ok(full.total > mebp.total && mebp.total > mesp.total && mesp.total >= lcsb.total);
  assert.ok(mesp.step <= 0.5 * mebp.step, `mesp step ${mesp.step} vs mebp ${mebp.step}`);
  // 4.39 M trainable parameters (MeBP paper), f32. Per-block updates keep one block's gradients.
  assert.equal(mesp.lora / 4, 4_399_104);
  assert.equal(mesp.grads * 24, mesp.lora);
  assert.equal(plan("mezo").grads, 0);
  const clipping = {
    config,
    method: "mesp",
    seqLen: 256,
    batchSize: 1,
    lora: { rank: 8, alpha: 16, targets: ALL },
    optimizer: "sgd",
    maxGradNorm: 1,
  } as const;
  // Clipping keeps one block slot + a bf16 copy of every gradient; the exact path the whole f32.
  assert.equal(planMemory(clipping).grads, mesp.grads + mesp.lora / 2);
  assert.equal(planMemory({ ...clipping, clipStash: "f32" }).grads, mesp.lora);
});

Deno.test("memory plan, Qwen2.5-0.5B shapes at seq 256: kept tapes within a budget, top down, from mesp's to full's", () => {
  const config: ModelConfig = {
    ...tinyConfig("qwen2"),
    hiddenSize: 896,
    intermediateSize: 4864,
    numLayers: 24,
    numHeads: 14,
    numKvHeads: 2,
    headDim: 64,
    vocabSize: 151936,
  };
  const o = {
    config,
    method: "mesp",
    seqLen: 256,
    batchSize: 1,
    lora: { rank: 8, alpha: 16, targets: ALL },
    optimizer: "sgd",
  } as const;
  const mesp = planMemory(o);
  const full = planMemory({ ...o, method: "full" });
  assert.equal(mesp.keptTapes, 0);
  assert.equal(full.keptTapes, 24);
  const within = (bytes: number) => keptTapesWithin(o, (p) => p.total <= bytes);
  assert.equal(within(mesp.total).keptTapes, 0);
  assert.equal(within(mesp.total - 1).keptTapes, 0, "nothing fits: the plan without tapes");
  assert.equal(within(full.total).keptTapes, 24);
  assert.equal(within(full.total).plan.total, full.total, "keeping all is full's memory");
  const half = within((mesp.total + full.total) / 2);
  assert.ok(half.keptTapes > 0 && half.keptTapes < 24, `${half.keptTapes}`);
  assert.ok(half.plan.total <= (mesp.total + full.total) / 2);
  assert.ok(
    planMemory({ ...o, keptTapes: half.keptTapes + 1 }).total > (mesp.total + full.total) / 2,
  );
  // Each more kept tape costs one tape (its checkpoint is its input copy).
  const step = (k: number) => planMemory({ ...o, keptTapes: k }).step;
  assert.equal(step(12) - step(11), blockTapeBytes(config, 1, 256, o.lora));
  assert.equal(keptTapesWithin({ ...o, method: "lcsb" }, () => true).keptTapes, 0);
  assert.throws(() => planMemory({ ...o, method: "lcsb", keptTapes: 1 }), /keeps no tapes/);
});

for (const arch of ["qwen3", "gemma3"] as const) exactPlanTest(arch);

function exactPlanTest(arch: "qwen3" | "gemma3"): void {
  Deno.test(`memory plan = measured high-water exactly for ${arch} (tape with the head norms' inputs, MeSP's recompute${arch === "gemma3" ? ", sandwich norms, two RoPE tables" : ""})`, async () => {
    const config = tinyConfig(arch);
    // Two shapes: batch 2 of 7 with 4-row MLP chunks, and one sequence of 33 in a single chunk.
    for (const [seqLen, batchSize, mlpChunkRows] of [[7, 2, 4], [33, 1, 64]]) {
      for (const method of ["full", "mebp", "mesp", "lcsb"] as const) {
        const { plan, measured } = await planAndMeasure(config, method, {
          seqLen,
          batchSize,
          mlpChunkRows,
        });
        assert.equal(measured, plan.total, `${method} T ${seqLen}`);
      }
    }
  });
}

Deno.test("memory plan, Qwen3-0.6B shapes at seq 256 rank 8: the head norms add their inputs and rstd to a tape, only the rstd to mesp", () => {
  const config: ModelConfig = {
    ...tinyConfig("qwen3"),
    hiddenSize: 1024,
    intermediateSize: 3072,
    numLayers: 28,
    numHeads: 16,
    numKvHeads: 8,
    headDim: 128,
    vocabSize: 151936,
  };
  const lora = { rank: 8, alpha: 16, targets: ALL };
  const N = 256;
  // q [N, 2048] and k [N, 1024] before the norms, one rstd per token and head (16 + 8).
  assert.equal(
    blockTapeBytes(config, 1, N, lora) - blockTapeBytes({ ...config, qkNorm: false }, 1, N, lora),
    4 * N * (2048 + 1024 + 16 + 8),
  );
  const plan = (method: MethodName, qkNorm = true) =>
    planMemory({
      config: { ...config, qkNorm },
      method,
      seqLen: N,
      batchSize: 1,
      lora,
      optimizer: "sgd",
    });
  const [full, mebp, mesp] = (["full", "mebp", "mesp"] as const).map((m) => plan(m));
  assert.ok(full.total > mebp.total && mebp.total > mesp.total);
  // mebp keeps one block's tape at a time; full keeps all 28.
  assert.equal(mebp.step - plan("mebp", false).step, 4 * N * (2048 + 1024 + 16 + 8));
  assert.equal(full.step - plan("full", false).step, 28 * 4 * N * (2048 + 1024 + 16 + 8));
  // mesp recomputes q and k for the norm backward; only the rstd stay through the backward.
  assert.equal(mesp.step - plan("mesp", false).step, 4 * N * (16 + 8));
  // LoRA parameters: r (in + out) per linear; q_proj is [2048, 1024], o_proj [1024, 2048].
  const perLayer = 8 * ((1024 + 2048) * 2 + (1024 + 1024) * 2 + (1024 + 3072) * 3);
  assert.equal(mesp.lora / 4, 28 * perLayer);
});

Deno.test("memory plan, Gemma 3 270M shapes at seq 256 rank 8: a tape keeps the sandwich norms' inputs and rstd; two RoPE tables", () => {
  const config: ModelConfig = {
    ...tinyConfig("gemma3", 18),
    hiddenSize: 640,
    intermediateSize: 2048,
    numHeads: 4,
    numKvHeads: 1,
    headDim: 256,
    vocabSize: 262144,
    slidingWindow: 512,
    attentionScale: 1 / 16,
    embedScale: 25.25,
  };
  const lora = { rank: 8, alpha: 16, targets: ALL };
  const N = 256;
  // o's and down's outputs [N, 640] and one rstd per token each.
  assert.equal(
    blockTapeBytes(config, 1, N, lora) -
      blockTapeBytes({ ...config, sandwichNorms: false }, 1, N, lora),
    2 * 4 * N * (640 + 1),
  );
  const plan = (method: MethodName, c: ModelConfig = config) =>
    planMemory({ config: c, method, seqLen: N, batchSize: 1, lora, optimizer: "sgd" });
  const [full, mebp, mesp, lcsb] = (["full", "mebp", "mesp", "lcsb"] as const).map((m) => plan(m));
  // (mesp's step is ~0.51 of mebp's here: the 18 block checkpoints [256, 640] both keep are
  // 11.8 MB of mesp's 19.2.)
  assert.ok(full.total > mebp.total && mebp.total > mesp.total && mesp.total >= lcsb.total);
  // The sliding layers' own tables: cos and sin [N, 128] more than with one theta.
  const oneTheta = { ...config, ropeLocalTheta: config.ropeTheta };
  assert.equal(mesp.step - plan("mesp", oneTheta).step, 2 * 4 * N * 128);
  // LoRA parameters: r (in + out) per linear; q_proj [1024, 640], k/v [256, 640], o [640, 1024].
  const perLayer = 8 * ((640 + 1024) * 2 + (640 + 256) * 2 + (640 + 2048) * 3);
  assert.equal(mesp.lora / 4, 18 * perLayer);
});
