/**
 * Multi-threaded kernels: bit-identical to one thread (the single-threaded build, not just the
 * threads build on one thread) on GEMM, int4, attention and cross-entropy shapes including ragged
 * ones, and on two whole training steps; fallback without workers; workers closed cleanly.
 * `minParallelWork: 0, minParallelRows: 1` make even tiny calls split, so every cut is exercised;
 * `parallelReclaim: false` makes every part run on its worker (with reclaim on, the caller takes
 * back the parts of tiny calls its workers have not woken for yet), and one build keeps it on.
 * Also the split decision (pure) and the threshold loadKernels reports (the pool's own protocol:
 * src/runtime/worker_pool_test.ts).
 */
import assert from "node:assert/strict";
import type { Kernels } from "./abi.ts";
import type { Ptr } from "../runtime/ptr.ts";
import { kernelModuleBytes, type LoadedKernels, loadKernels, loadKernelsSync } from "./wasm.ts";
import {
  DEFAULT_MIN_PART_ROWS,
  DEFAULT_MIN_WORK,
  evenCuts,
  gemmRowCuts,
  median,
  MIN_ASSUMED_RATE,
  MIN_WORK_CAP,
  MIN_WORK_FLOOR,
  parallelSettings,
  REMEASURE_EVERY_CALLS,
  splitPays,
  SplitThreshold,
  threadsThatPay,
} from "./parallel.ts";
import { makeRandom } from "./_testing.ts";
import { threadsAvailable, WorkerPool } from "../runtime/worker_pool.ts";
import type { Arena } from "../runtime/arena.ts";
import { createRandomWeightStore, tinyConfig } from "../model/random_weights.ts";
import { LINEAR_NAMES } from "../model/weights.ts";
import { createTrainingSession, type MethodName } from "../methods/session.ts";

const F = 4;

/**
 * Threaded loads of 2 and 3 threads with every part on its worker (3 exercises several workers
 * and uneven cuts), and of 2 threads where the caller may take parts back.
 */
async function withThreaded(f: (builds: LoadedKernels[]) => void | Promise<void>): Promise<void> {
  const builds: LoadedKernels[] = [];
  try {
    for (const [threads, reclaim] of [[2, false], [3, false], [2, true]] as const) {
      const b = await loadKernels({
        threads,
        minParallelWork: 0,
        minParallelRows: 1,
        parallelReclaim: reclaim,
      });
      builds.push(b);
      assert.equal(b.threads, threads, "workers available under Deno");
      assert.deepEqual(b.parallel?.minWork, 0);
      assert.equal(b.parallel?.source, "option");
    }
    await f(builds);
  } finally {
    for (const b of builds) b.close();
  }
}

/** A case: allocates its inputs (same values for every build) and runs; returns the outputs. */
type Case = (k: Kernels, arena: Arena) => { ptr: Ptr; n: number }[];

function fill(arena: Arena, n: number, seed: number, scale = 1): Ptr {
  const p = arena.allocF32(Math.max(1, n));
  const rand = makeRandom(seed);
  const v = arena.f32(p, n);
  for (let i = 0; i < n; i++) v[i] = rand() * scale;
  return p;
}

/** Runs `c` on one thread and on each threaded build; every output byte must match. */
function assertSameBits(single: LoadedKernels, threaded: LoadedKernels[], c: Case, label: string) {
  const run = (b: LoadedKernels) => {
    const mark = b.arena.mark();
    try {
      return c(b.kernels, b.arena).map(({ ptr, n }) => b.arena.u8(ptr, n * F).slice());
    } finally {
      b.arena.release(mark);
    }
  };
  const want = run(single);
  for (const b of threaded) {
    const got = run(b);
    for (let i = 0; i < want.length; i++) {
      const a = got[i];
      const e = want[i];
      let bad = -1;
      for (let j = 0; j < e.length && bad < 0; j++) if (a[j] !== e[j]) bad = j;
      if (bad >= 0) {
        const fa = new Float32Array(a.buffer)[bad >> 2];
        const fe = new Float32Array(e.buffer)[bad >> 2];
        assert.fail(
          `${label} (threads ${b.threads}) output ${i} float ${bad >> 2}: ${fa} != ${fe}`,
        );
      }
    }
  }
}

Deno.test("row cuts fall on 6-row slivers the single-threaded walk visits", () => {
  for (let M = 1; M <= 200; M++) {
    for (const parts of [2, 3, 4]) {
      for (const minRows of [6, 9]) {
        const c = gemmRowCuts(M, parts, minRows);
        assert.equal(c[0], 0);
        assert.equal(c[c.length - 1], M);
        assert.ok(c.length - 1 <= parts);
        for (let i = 1; i < c.length - 1; i++) {
          assert.equal(c[i] % 6, 0);
          assert.ok(c[i] <= M - 3, `M ${M} cut ${c[i]}`);
        }
        for (let i = 1; i < c.length; i++) {
          if (c.length > 2) assert.ok(c[i] - c[i - 1] >= minRows, `M ${M}: ${c}`);
        }
      }
    }
  }
  assert.deepEqual(gemmRowCuts(256, 2, 6), [0, 126, 256]);
  assert.deepEqual(evenCuts(100, 3, 8), [0, 32, 64, 100]);
  assert.deepEqual(evenCuts(1, 2, 1), [0, 1]);
});

Deno.test("f32 GEMMs split by rows are bit-identical to one thread", async () => {
  const single = loadKernelsSync();
  await withThreaded((threaded) => {
    const Ms = [1, 2, 5, 6, 7, 8, 9, 12, 13, 14, 15, 17, 18, 20, 23, 25, 31, 37, 64, 100];
    const NKs = [[3, 1], [8, 7], [13, 64], [37, 300], [16, 33]];
    for (const kernel of ["matmulABt", "matmulAB"] as const) {
      for (const M of Ms) {
        for (const [N, K] of NKs) {
          for (const acc of [0, 1]) {
            assertSameBits(single, threaded, (k, arena) => {
              const a = fill(arena, M * K, 1);
              const b = fill(arena, N * K, 2);
              const out = fill(arena, M * N, 3);
              k[kernel](out, a, b, M, N, K, 0.75, acc);
              return [{ ptr: out, n: M * N }];
            }, `${kernel} M=${M} N=${N} K=${K} acc=${acc}`);
          }
        }
      }
    }
  });
});

/** An int4 W [N,K] quantized from random values. */
function int4(k: Kernels, arena: Arena, N: number, K: number, gs: number, seed: number) {
  const w = fill(arena, N * K, seed);
  const q = arena.alloc(N * K / 2);
  const scales = arena.allocF32(N * K / gs);
  const biases = arena.allocF32(N * K / gs);
  k.int4Quantize(q, scales, biases, w, N, K, gs);
  return { q, scales, biases };
}

Deno.test("int4 x·Wᵀ and g·W split across threads are bit-identical to one thread", async () => {
  const single = loadKernelsSync();
  await withThreaded((threaded) => {
    for (const [K, gs] of [[64, 64], [128, 32], [96, 16]]) {
      for (const N of [5, 8, 13, 40, 100]) {
        for (const M of [1, 2, 7, 8, 9, 13, 14, 20, 21, 37, 64]) {
          for (const acc of [0, 1]) {
            assertSameBits(single, threaded, (k, arena) => {
              const w = int4(k, arena, N, K, gs, 4);
              const x = fill(arena, M * K, 5);
              const out = fill(arena, M * N, 6);
              k.int4MatmulXWt(out, x, w.q, w.scales, w.biases, M, N, K, gs, 1.25, acc);
              // g·W: W [N,K], g [M,N], out [M,K]
              const g = fill(arena, M * N, 7);
              const dx = fill(arena, M * K, 8);
              k.int4MatmulGW(dx, g, w.q, w.scales, w.biases, M, N, K, gs, 0.5, acc);
              return [{ ptr: out, n: M * N }, { ptr: dx, n: M * K }];
            }, `int4 M=${M} N=${N} K=${K} gs=${gs} acc=${acc}`);
          }
        }
      }
    }
  });
});

Deno.test("int4 x·Wᵀ split by columns (few rows, wide N across packed blocks) is bit-identical", async () => {
  const single = loadKernelsSync();
  await withThreaded((threaded) => {
    for (const [M, N, K, gs] of [[3, 1030, 64, 64], [13, 1100, 128, 32], [31, 2060, 64, 64]]) {
      for (const acc of [0, 1]) {
        assertSameBits(single, threaded, (k, arena) => {
          const w = int4(k, arena, N, K, gs, 4);
          const x = fill(arena, M * K, 5);
          const out = fill(arena, M * N, 6);
          k.int4MatmulXWt(out, x, w.q, w.scales, w.biases, M, N, K, gs, 0.75, acc);
          return [{ ptr: out, n: M * N }];
        }, `int4 columns M=${M} N=${N} K=${K} gs=${gs} acc=${acc}`);
      }
    }
  });
});

Deno.test("fused bias and residual GEMMs split across threads are bit-identical to one thread", async () => {
  const single = loadKernelsSync();
  await withThreaded((threaded) => {
    for (const [M, N, K] of [[1, 13, 64], [7, 40, 64], [9, 8, 128], [37, 100, 64], [64, 16, 320]]) {
      assertSameBits(single, threaded, (k, arena) => {
        const w = int4(k, arena, N, K, 32, 4);
        const x = fill(arena, M * K, 5);
        const bias = fill(arena, N, 6);
        const out = fill(arena, M * N, 7);
        k.int4MatmulXWtBias(out, x, w.q, w.scales, w.biases, bias, M, N, K, 32);
        const wf = fill(arena, N * K, 8);
        const y = fill(arena, M * N, 9);
        k.matmulABtBias(y, x, wf, bias, M, N, K);
        const res = fill(arena, M * N, 10);
        const z = fill(arena, M * N, 11);
        k.matmulABtResidual(z, res, x, wf, M, N, K, 2, 1, 1);
        const z2 = fill(arena, M * N, 12);
        k.matmulABtResidual(z2, res, x, wf, M, N, K, 0.75, 0, 0);
        return [out, y, z, z2, res].map((ptr) => ({ ptr, n: M * N }));
      }, `fused bias M=${M} N=${N} K=${K}`);
    }
  });
});

Deno.test("attention split by heads is bit-identical to one thread (forward and backward)", async () => {
  const single = loadKernelsSync();
  await withThreaded((threaded) => {
    const shapes = [
      [1, 2, 1, 16],
      [5, 4, 2, 16],
      [37, 6, 3, 20],
      [64, 8, 2, 64],
      [33, 3, 3, 8],
      [17, 8, 8, 12],
      [20, 5, 1, 32],
      [130, 14, 2, 64],
      // Too long for the backward's scratch staging of dk/dv: updates them in place instead.
      [2048, 2, 2, 128],
      // Sliding windows (the fifth entry).
      [130, 8, 2, 64, 37],
      [64, 4, 1, 32, 16],
    ];
    for (const [T, Hq, Hkv, hd, window = 0] of shapes) {
      assertSameBits(single, threaded, (k, arena) => {
        const scale = 1 / Math.sqrt(hd);
        const q = fill(arena, T * Hq * hd, 1);
        const kk = fill(arena, T * Hkv * hd, 2);
        const v = fill(arena, T * Hkv * hd, 3);
        const out = arena.allocF32(T * Hq * hd);
        const lse = arena.allocF32(Hq * T);
        k.attentionForward(out, lse, q, kk, v, T, Hq, Hkv, hd, scale, window);
        const dout = fill(arena, T * Hq * hd, 4);
        const dq = arena.allocF32(T * Hq * hd);
        const dk = fill(arena, T * Hkv * hd, 5); // overwritten: garbage in must not matter
        const dv = fill(arena, T * Hkv * hd, 6);
        k.attentionBackward(dq, dk, dv, dout, q, kk, v, out, lse, T, Hq, Hkv, hd, scale, window);
        return [
          { ptr: out, n: T * Hq * hd },
          { ptr: lse, n: Hq * T },
          { ptr: dq, n: T * Hq * hd },
          { ptr: dk, n: T * Hkv * hd },
          { ptr: dv, n: T * Hkv * hd },
        ];
      }, `attention T=${T} Hq=${Hq} Hkv=${Hkv} hd=${hd} window=${window}`);
    }
  });
});

Deno.test("cross-entropy chunks split by rows are bit-identical to one thread", async () => {
  const single = loadKernelsSync();
  await withThreaded((threaded) => {
    for (const [T, Vc] of [[1, 5], [7, 130], [37, 64]]) {
      assertSameBits(single, threaded, (k, arena) => {
        const v0 = 100;
        const logits = fill(arena, T * Vc, 1, 4);
        const targets = arena.allocI32(T);
        const tg = arena.i32(targets, T);
        for (let t = 0; t < T; t++) tg[t] = t % 5 === 3 ? -1 : v0 + ((t * 7) % (Vc + 20)) - 10;
        const rowMax = fill(arena, T, 2);
        const rowSum = arena.allocF32(T);
        arena.f32(rowSum, T).fill(1.5);
        const target = arena.allocF32(T);
        arena.f32(target, T).fill(0);
        k.ceChunkForward(logits, T, Vc, v0, targets, rowMax, rowSum, target);
        const lse = fill(arena, T, 3);
        k.ceChunkBackward(logits, T, Vc, v0, targets, lse, 0.125);
        return [
          { ptr: logits, n: T * Vc },
          { ptr: rowMax, n: T },
          { ptr: rowSum, n: T },
          { ptr: target, n: T },
        ];
      }, `ce T=${T} Vc=${Vc}`);
    }
  });
});

Deno.test("swiglu split by elements is bit-identical to one thread", async () => {
  const single = loadKernelsSync();
  await withThreaded((threaded) => {
    for (const n of [1, 3, 17, 37, 100, 1001]) {
      assertSameBits(single, threaded, (k, arena) => {
        const gate = fill(arena, n, 1, 6);
        const up = fill(arena, n, 2);
        const out = arena.allocF32(n);
        k.swigluForward(out, gate, up, n);
        const dout = fill(arena, n, 3);
        const dgate = arena.allocF32(n);
        const dup = arena.allocF32(n);
        k.swigluBackward(dgate, dup, dout, gate, up, n);
        return [{ ptr: out, n }, { ptr: dgate, n }, { ptr: dup, n }];
      }, `swiglu n=${n}`);
    }
  });
});

Deno.test("geglu-tanh split by elements is bit-identical to one thread", async () => {
  const single = loadKernelsSync();
  await withThreaded((threaded) => {
    for (const n of [1, 3, 17, 37, 100, 1001]) {
      assertSameBits(single, threaded, (k, arena) => {
        const gate = fill(arena, n, 1, 6);
        const up = fill(arena, n, 2);
        const out = arena.allocF32(n);
        k.gegluTanhForward(out, gate, up, n);
        const dout = fill(arena, n, 3);
        const dgate = arena.allocF32(n);
        const dup = arena.allocF32(n);
        k.gegluTanhBackward(dgate, dup, dout, gate, up, n);
        return [{ ptr: out, n }, { ptr: dgate, n }, { ptr: dup, n }];
      }, `geglu n=${n}`);
    }
  });
});

/** Loss and LoRA tensors after two steps of `method` on a tiny random model. */
async function twoSteps(
  loaded: LoadedKernels,
  method: MethodName,
  quant: "none" | "int4",
  arch: "qwen2" | "gemma3",
): Promise<{ losses: number[]; lora: Map<string, Float32Array> }> {
  const { kernels, arena } = loaded;
  // Gemma 3: GQA 6:1, head_dim 32 != 96 / 6, sliding layers (window 3 < 21) and a full one.
  const config = {
    ...tinyConfig(arch, arch === "gemma3" ? 3 : 2),
    hiddenSize: 96,
    numHeads: 6,
    headDim: arch === "gemma3" ? 32 : 16,
  };
  const store = createRandomWeightStore({ config, kernels, arena, seed: 3, quant, groupSize: 32 });
  const session = await createTrainingSession({
    store,
    kernels,
    arena,
    method,
    seed: 5,
    maxGradNorm: 0,
    lora: { rank: 4, alpha: 8, targets: [...LINEAR_NAMES] },
    optimizer: { kind: "adamw", lr: 1e-2, weightDecay: 0.01 },
    headChunkRows: 128,
  });
  const ids = Int32Array.from({ length: 2 * 21 }, (_, i) => (i * 37 + 11) % config.vocabSize);
  const batch = { inputIds: ids, labels: ids, batchSize: 2, seqLen: 21 };
  const losses: number[] = [];
  for (let s = 0; s < 2; s++) losses.push((await session.step([batch], 1e-2)).loss);
  const lora = new Map<string, Float32Array>();
  for (const [name, t] of session.loraTensors()) lora.set(name, t.data.slice());
  return { losses, lora };
}

Deno.test("two training steps (mesp, int4; full, f32; Qwen2 and Gemma 3) with 2 threads are bit-identical to 1 thread", async () => {
  for (
    const [method, quant, arch] of [
      ["mesp", "int4", "qwen2"],
      ["full", "none", "qwen2"],
      ["mesp", "int4", "gemma3"],
      ["full", "none", "gemma3"],
    ] as const
  ) {
    const one = await twoSteps(loadKernelsSync(), method, quant, arch);
    const loaded = await loadKernels({
      threads: 2,
      minParallelWork: 0,
      minParallelRows: 1,
      parallelReclaim: method === "full",
    });
    try {
      assert.equal(loaded.threads, 2);
      const two = await twoSteps(loaded, method, quant, arch);
      assert.ok(one.losses.every(Number.isFinite));
      assert.deepEqual(two.losses, one.losses, `${method} losses`);
      assert.equal(two.lora.size, one.lora.size);
      for (const [name, want] of one.lora) {
        const got = two.lora.get(name)!;
        assert.deepEqual(
          new Uint8Array(got.buffer),
          new Uint8Array(want.buffer),
          `${arch} ${method} ${name} differs`,
        );
      }
    } finally {
      loaded.close();
    }
  }
});

Deno.test("no Worker / no blocking wait: one thread, no error, same results", async () => {
  const g = globalThis as Record<string, unknown>;
  const saved = g.Worker;
  try {
    delete g.Worker;
    assert.equal(threadsAvailable(), false);
    const b = await loadKernels({ threads: 4 });
    assert.equal(b.threads, 1);
    b.close();
  } finally {
    g.Worker = saved;
  }
  // A browser's main thread may not block: Atomics.wait throws there.
  const wait = Atomics.wait;
  try {
    (Atomics as { wait: unknown }).wait = () => {
      throw new TypeError("Atomics.wait cannot be called in this context");
    };
    assert.equal(threadsAvailable(), false);
    const b = await loadKernels({ threads: 2 });
    assert.equal(b.threads, 1);
  } finally {
    (Atomics as { wait: unknown }).wait = wait;
  }
  assert.equal(threadsAvailable(), true);
  // An ordinary (non-shared) memory or the reference variant cannot be threaded either.
  const plain = await loadKernels({ threads: 2, memory: new WebAssembly.Memory({ initial: 1 }) });
  assert.equal(plain.threads, 1);
  const ref = await loadKernels({ threads: 2, variant: "reference" });
  assert.equal(ref.threads, 1);
  assert.throws(() => loadKernelsSync({ threads: 2 }), RangeError);
  await assert.rejects(() => loadKernels({ threads: 0 }), RangeError);
});

Deno.test("close() terminates the workers; later calls run on the calling thread", async () => {
  const single = loadKernelsSync();
  const b = await loadKernels({ threads: 2, minParallelWork: 0, minParallelRows: 1 });
  assert.equal(b.threads, 2);
  b.close();
  b.close(); // idempotent
  assertSameBits(single, [b], (k, arena) => {
    const a = fill(arena, 40 * 24, 1);
    const w = fill(arena, 16 * 24, 2);
    const out = arena.allocF32(40 * 16);
    k.matmulABt(out, a, w, 40, 16, 24, 1, 0);
    return [{ ptr: out, n: 40 * 16 }];
  }, "after close");
});

Deno.test("a failing job on a worker throws on the caller, and the pool goes on", async () => {
  const memory = new WebAssembly.Memory({ initial: 2, maximum: 256, shared: true });
  const module = new WebAssembly.Module(kernelModuleBytes("simd-threads") as BufferSource);
  const pool = await WorkerPool.create({
    module,
    memory,
    scratch: [0],
    scratchBytes: 4 << 20,
    ops: ["sumSquares", "unreachableOp"],
  }).catch((e) => e as Error);
  // An op the module lacks is refused at start-up.
  assert.ok(pool instanceof Error && /lacks "unreachableOp"/.test(pool.message));
  const big = new WebAssembly.Memory({ initial: 80, maximum: 256, shared: true });
  const ok = await WorkerPool.create({
    module,
    memory: big,
    scratch: [65536],
    scratchBytes: 4 << 20,
    ops: ["attentionForward", "sumSquares"],
  });
  try {
    // Hq % Hkv != 0 traps (unreachable) inside the worker.
    ok.post(0, 0, [0, 0, 0, 0, 0, 4, 3, 2, 16, 1]);
    assert.throws(() => ok.wait(0), /kernel worker 1 failed: attentionForward/);
    ok.post(0, 1, [0, 4]);
    ok.wait(0);
  } finally {
    ok.close();
  }
});

Deno.test("split decision: pays when the time saved covers the margin of round trips", () => {
  const base = { threads: 2, roundTripUs: 50, macsPerUs: 20000 };
  // The edge: saving 2 round trips (100 µs) takes a 200 µs call on 2 threads, 4M multiply-adds.
  const edge = (2 * 50 * 20000) / (1 - 1 / 2);
  assert.equal(splitPays({ ...base, work: edge }), true);
  assert.equal(splitPays({ ...base, work: edge - 1 }), false);
  // Monotone in work: once it pays, it pays for every larger call.
  let paid = false;
  for (let work = 0; work <= 1e7; work += 9973) {
    const p = splitPays({ ...base, work });
    if (paid) assert.ok(p, `work ${work} after a smaller one paid`);
    paid ||= p;
  }
  assert.ok(paid);
  // Slower dispatch or a faster core: a larger threshold; more threads save more of the work.
  assert.equal(splitPays({ ...base, roundTripUs: 500, work: edge }), false);
  assert.equal(splitPays({ ...base, macsPerUs: 40000, work: edge }), false);
  // A rate measured before the kernel was optimized (a third of the speed) counts as the least
  // assumed rate: the threshold does not drop below what that rate gives.
  assert.equal(
    splitPays({ ...base, macsPerUs: 7000, work: edge * (MIN_ASSUMED_RATE / 20000) }),
    true,
  );
  assert.equal(
    splitPays({ ...base, macsPerUs: 7000, work: edge * (MIN_ASSUMED_RATE / 20000) - 1 }),
    false,
  );
  assert.equal(splitPays({ ...base, threads: 4, work: edge * 0.7 }), true);
  assert.equal(splitPays({ ...base, threads: 1, work: 1e12 }), false);
  assert.equal(splitPays({ ...base, margin: 4, work: edge }), false);
  // Nothing measured: the fixed default.
  assert.equal(splitPays({ ...base, roundTripUs: NaN, work: DEFAULT_MIN_WORK }), true);
  assert.equal(splitPays({ ...base, roundTripUs: NaN, work: DEFAULT_MIN_WORK - 1 }), false);
});

Deno.test("parallelSettings: derived threshold agrees with splitPays, is clamped, an option wins", () => {
  for (const roundTripUs of [20, 45, 130, 250]) {
    for (const macsPerUs of [5000, 21000, 60000]) {
      for (const threads of [2, 3, 8]) {
        const m = { threads, roundTripUs, macsPerUs };
        const s = parallelSettings(m);
        assert.equal(s.source, "measured");
        assert.ok(s.minWork >= MIN_WORK_FLOOR && s.minWork <= MIN_WORK_CAP);
        if (s.minWork > MIN_WORK_FLOOR && s.minWork < MIN_WORK_CAP) {
          assert.equal(splitPays({ ...m, work: s.minWork }), true, JSON.stringify(m));
          assert.equal(splitPays({ ...m, work: s.minWork - 1 }), false, JSON.stringify(m));
        }
      }
    }
  }
  // 45 µs round trips (a worker woken from sleep on this 2-core VM), 21 multiply-adds per ns.
  assert.equal(
    parallelSettings({ threads: 2, roundTripUs: 45, macsPerUs: 21000 }).minWork,
    3780000,
  );
  // A round trip under the timer's resolution, or a disturbed measurement: the bounds.
  assert.equal(
    parallelSettings({ threads: 2, roundTripUs: 0, macsPerUs: 21000 }).minWork,
    MIN_WORK_FLOOR,
  );
  assert.equal(
    parallelSettings({ threads: 2, roundTripUs: 1e5, macsPerUs: 21000 }).minWork,
    MIN_WORK_CAP,
  );
  // Nothing measured.
  const d = parallelSettings({ threads: 2, roundTripUs: NaN, macsPerUs: NaN });
  assert.deepEqual([d.minWork, d.source, d.minPartRows], [
    DEFAULT_MIN_WORK,
    "default",
    DEFAULT_MIN_PART_ROWS,
  ]);
  // The override is taken as is, even 0, and rows too.
  const o = parallelSettings({
    threads: 2,
    roundTripUs: 45,
    macsPerUs: 21000,
    minWork: 0,
    minPartRows: 1,
  });
  assert.deepEqual([o.minWork, o.source, o.minPartRows], [0, "option", 1]);
});

Deno.test("loadKernels measures and reports its split threshold; minParallelWork overrides it", async () => {
  const auto = await loadKernels({ threads: 2 });
  try {
    const p = auto.parallel!;
    assert.equal(p.source, "measured");
    assert.ok(p.roundTripUs >= 0 && p.roundTripUs < 1e6, `round trip ${p.roundTripUs} µs`);
    assert.ok(p.wakeUs >= 0 && p.wakeUs < 1e6, `wake ${p.wakeUs} µs`);
    assert.ok(p.macsPerUs > 0, `GEMM rate ${p.macsPerUs}`);
    // Three thresholds at load, the first from the start-up round trip; minWork is their median.
    assert.equal(p.minWorkSamples.length, 3);
    assert.equal(
      p.minWorkSamples[0],
      parallelSettings({ threads: 2, roundTripUs: p.roundTripUs, macsPerUs: p.macsPerUs }).minWork,
    );
    assert.equal(p.minWork, Math.ceil(median([...p.minWorkSamples])));
    assert.equal(p.minPartRows, DEFAULT_MIN_PART_ROWS);
  } finally {
    auto.close();
  }
  const fixed = await loadKernels({ threads: 2, minParallelWork: 12345, minParallelRows: 7 });
  try {
    assert.deepEqual(
      [fixed.parallel?.minWork, fixed.parallel?.minPartRows, fixed.parallel?.source],
      [12345, 7, "option"],
    );
  } finally {
    fixed.close();
  }
  assert.equal(loadKernelsSync().parallel, null);
});

Deno.test("split threshold smoothing: the median of the last measurements, outliers ignored", () => {
  assert.equal(median([]), NaN);
  assert.equal(median([3]), 3);
  assert.equal(median([5, 1, 3]), 3);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.equal(median([NaN, 2, 4]), 3);
  const t = new SplitThreshold(5);
  assert.equal(t.value, DEFAULT_MIN_WORK); // nothing measured yet
  // Firefox's swing: one coarse-timer reading of 3.84M among readings near 0.3M.
  assert.equal(t.add(300_000), 300_000);
  assert.equal(t.add(3_840_000), 2_070_000);
  assert.equal(t.add(260_000), 300_000);
  assert.equal(t.add(NaN), 300_000); // a failed measurement changes nothing
  assert.deepEqual(t.samples, [300_000, 3_840_000, 260_000]);
  for (const x of [280_000, 310_000, 290_000]) t.add(x);
  // Only the newest 5 are kept.
  assert.deepEqual(t.samples, [3_840_000, 260_000, 280_000, 310_000, 290_000]);
  assert.equal(t.samples.length, 5);
  assert.equal(t.samples[0], 3_840_000);
  assert.equal(t.value, 290_000);
  t.add(300_000); // the outlier leaves the window
  assert.deepEqual(t.samples, [260_000, 280_000, 310_000, 290_000, 300_000]);
  assert.equal(t.value, 290_000);
  assert.throws(() => new SplitThreshold(0), /window must be >= 1/);
});

Deno.test({
  name: "split threshold: measured several times at load and re-measured during training",
  ignore: !threadsAvailable(),
  async fn() {
    const loaded = await loadKernels({ threads: 2 });
    try {
      const p = loaded.parallel!;
      assert.equal(p.source, "measured");
      assert.equal(p.remeasured, 0);
      const { kernels: k, arena } = loaded;
      const a = arena.allocF32(16 * 16), b = arena.allocF32(16 * 16), out = arena.allocF32(256);
      for (let i = 0; i < 2 * REMEASURE_EVERY_CALLS + 1; i++) {
        k.matmulABt(out, a, b, 16, 16, 16, 1, 0);
      }
      assert.equal(p.remeasured, 2);
      assert.ok(p.minWork >= MIN_WORK_FLOOR && p.minWork <= MIN_WORK_CAP, `${p.minWork}`);
      assert.ok(p.roundTripUs >= 0);
    } finally {
      loaded.close();
    }
  },
});

Deno.test("threadsThatPay: the fewest threads within 10% of the best measured speed-up", () => {
  assert.equal(threadsThatPay([1]), 1);
  assert.equal(threadsThatPay([1, 1.9, 1.85, 1.7]), 2); // 4 asked on 2 cores
  assert.equal(threadsThatPay([1, 1.95, 2.8, 3.6]), 4);
  assert.equal(threadsThatPay([1, 1.05]), 1); // a gain inside the tolerance is not one
  assert.equal(threadsThatPay([1, 0.7, 0.5]), 1); // slower with more
  assert.equal(threadsThatPay([1, 1.5, 1.6], 0.02), 3);
  assert.equal(threadsThatPay([1, NaN, 1.8]), 3);
});

Deno.test({
  name: "fitThreads: the threads kept are the ones the probe measured to pay; the rest are freed",
  ignore: !threadsAvailable(),
  async fn() {
    const asked = 3;
    using fitted = await loadKernels({ threads: asked, variant: "simd", fitThreads: true });
    const s = fitted.threadSpeedups!;
    assert.equal(s.length, asked);
    assert.equal(s[0], 1);
    assert.ok(s.every((x) => x > 0 && Number.isFinite(x)), `${s}`);
    assert.equal(fitted.threads, threadsThatPay(s));
    // Kernel data plus one scratch per kept thread: nothing of the stopped workers' is counted.
    using one = await loadKernels({ threads: 1, variant: "simd" });
    const perThread = one.kernels.scratchBytes();
    assert.equal(fitted.arena.highWater, fitted.arena.used);
    assert.ok(
      fitted.arena.used <= one.arena.used + (fitted.threads - 1) * (perThread + 64),
      `arena ${fitted.arena.used} for ${fitted.threads} threads`,
    );
    // Results stay those of one thread.
    const rand = makeRandom(5);
    const [M, N, K] = [64, 96, 80];
    const A = Float32Array.from({ length: M * K }, rand);
    const B = Float32Array.from({ length: N * K }, rand);
    const run = (l: LoadedKernels) => {
      const a = l.arena.allocF32(M * K), b = l.arena.allocF32(N * K), out = l.arena.allocF32(M * N);
      l.arena.f32(a, M * K).set(A);
      l.arena.f32(b, N * K).set(B);
      l.kernels.matmulABt(out, a, b, M, N, K, 1, 0);
      return l.arena.f32(out, M * N).slice();
    };
    assert.deepEqual(run(fitted), run(one));
    console.log(
      `fitThreads: ${fitted.threads} of ${asked} kept; GEMM speed-ups ${
        s.map((x) => x.toFixed(2)).join(", ")
      } on ${navigator.hardwareConcurrency} cores`,
    );
  },
});
