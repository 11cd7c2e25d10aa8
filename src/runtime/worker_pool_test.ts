/**
 * The kernel worker pool's protocol: a job is run exactly once (by its worker, or by the caller
 * that takes it back before the worker starts it), the round trips measured at start, and what a
 * caller sees when a worker's loop stops or a job outlasts the wait limit.
 */
import assert from "node:assert/strict";
import { kernelModuleBytes } from "../kernels/wasm.ts";
import { type RawExports, WORKER_OPS } from "../kernels/parallel.ts";
import { PING_OP, WorkerPool } from "./worker_pool.ts";

const F = 4;

/** A pool of one worker over a small shared memory (ops: the parallel kernels' ones). */
async function smallPool(waitLimitMs?: number) {
  const memory = new WebAssembly.Memory({ initial: 80, maximum: 1024, shared: true });
  const module = new WebAssembly.Module(kernelModuleBytes("simd-threads") as BufferSource);
  const pool = await WorkerPool.create({
    module,
    memory,
    scratch: [65536],
    scratchBytes: 4 << 20,
    ops: WORKER_OPS,
    waitLimitMs,
  });
  return { pool, memory, module };
}

Deno.test("the caller takes back a job its worker has not started: each job runs once", async () => {
  const { pool, memory, module } = await smallPool();
  try {
    assert.ok(pool.roundTripUs >= 0, `round trip ${pool.roundTripUs}`);
    // The caller's own instance (what run() falls back to), with its own scratch.
    memory.grow(160 - memory.buffer.byteLength / 65536);
    const mine = new WebAssembly.Instance(module, { env: { memory } }).exports as RawExports;
    mine.init(65536 + (4 << 20), 4 << 20);
    // out += a·bᵀ (acc = 1) with a, b all ones adds K to every element: a job run twice (or
    // never) shows in the sum.
    const [M, N, K] = [6, 8, 4];
    const a = 9 << 20, b = a + M * K * F, out = b + N * K * F;
    new Float32Array(memory.buffer, a, M * K + N * K).fill(1);
    new Float32Array(memory.buffer, out, M * N).fill(0);
    const args = [out, a, b, M, N, K, 1, 1];
    let back = 0;
    const jobs = 300;
    for (let r = 0; r < jobs; r++) {
      pool.post(0, WORKER_OPS.indexOf("matmulABt"), args);
      // A varying head start, so that both sides win some.
      const until = performance.now() + (r % 7) * 0.005;
      while (performance.now() < until) { /* let the worker wake, or not */ }
      if (pool.reclaim(0)) {
        back++;
        mine.matmulABt(...args);
      } else {
        pool.wait(0);
      }
      assert.equal(pool.reclaim(0), false, "a job taken back twice");
    }
    const got = new Float32Array(memory.buffer, out, M * N);
    assert.ok(got.every((v) => v === jobs * K), `sums ${got[0]}.., want ${jobs * K}`);
    console.log(`  ${back} of ${jobs} jobs taken back by the caller`);
  } finally {
    pool.close();
  }
});

Deno.test("a worker whose loop stops (an op it does not know) makes the caller throw, not hang", async () => {
  const { pool } = await smallPool();
  try {
    pool.post(0, 99, []);
    assert.throws(() => pool.wait(0), /kernel worker 1 stopped during op 99: Error: unknown op 99/);
    // Later jobs are all taken back by the caller; a wait would throw again.
    pool.post(0, 0, []);
    assert.equal(pool.reclaim(0), true);
    pool.post(0, PING_OP, []);
    assert.throws(() => pool.wait(0), /kernel worker 1 stopped during ping/);
  } finally {
    pool.close();
  }
});

Deno.test("a job running past waitLimitMs: the wait throws naming the worker and op", async () => {
  // A worker killed inside a kernel cannot clear its flag (and Deno's terminate() lets a running
  // wasm call finish), so only a time limit ends such a wait; here a ~100+ ms GEMM and 20 ms.
  const { pool, memory } = await smallPool(20);
  try {
    const [M, N, K] = [2048, 1024, 1024];
    const a = 8 << 20, b = a + M * K * F, out = b + N * K * F;
    memory.grow(Math.ceil((out + M * N * F) / 65536) - memory.buffer.byteLength / 65536);
    pool.post(0, WORKER_OPS.indexOf("matmulABt"), [out, a, b, M, N, K, 1, 0]);
    assert.throws(
      () => pool.wait(0),
      /kernel worker 1 did not finish matmulABt in 20 ms \(terminated, or stuck\)/,
    );
  } finally {
    pool.close();
  }
});

Deno.test("round trips: measured at start, back to back and with the workers asleep", async () => {
  const { pool } = await smallPool();
  try {
    assert.ok(pool.roundTripUs >= 0 && pool.roundTripUs < 1e6, `round trip ${pool.roundTripUs}`);
    assert.ok(pool.wakeUs >= 0 && pool.wakeUs < 1e6, `wake ${pool.wakeUs}`);
    const m = pool.measureRoundTrip({ reps: 5, gapUs: 0 });
    assert.ok(m.min <= m.p25 && m.p25 <= m.median && m.median <= m.max, JSON.stringify(m));
  } finally {
    pool.close();
  }
  const memory = new WebAssembly.Memory({ initial: 80, maximum: 256, shared: true });
  const module = new WebAssembly.Module(kernelModuleBytes("simd-threads") as BufferSource);
  const raw = await WorkerPool.create({
    module,
    memory,
    scratch: [65536],
    scratchBytes: 4 << 20,
    ops: WORKER_OPS,
    calibrate: false,
  });
  try {
    assert.ok(Number.isNaN(raw.roundTripUs) && Number.isNaN(raw.wakeUs));
    raw.ping(0);
  } finally {
    raw.close();
  }
});

Deno.test("shrink keeps the first workers, stops the rest, and measures the round trip again", async () => {
  const memory = new WebAssembly.Memory({ initial: 256, maximum: 1024, shared: true });
  const module = new WebAssembly.Module(kernelModuleBytes("simd-threads") as BufferSource);
  const pool = await WorkerPool.create({
    module,
    memory,
    scratch: [65536, 65536 + (4 << 20), 65536 + (8 << 20)],
    scratchBytes: 4 << 20,
    ops: WORKER_OPS,
  });
  try {
    assert.equal(pool.size, 3);
    pool.shrink(1);
    assert.equal(pool.size, 1);
    assert.ok(Number.isFinite(pool.roundTripUs) && pool.roundTripUs >= 0);
    pool.post(0, PING_OP, []);
    pool.wait(0);
    pool.shrink(5); // more than it has: unchanged
    assert.equal(pool.size, 1);
    pool.shrink(0);
    assert.equal(pool.size, 0);
    assert.ok(Number.isNaN(pool.roundTripUs));
  } finally {
    pool.close();
  }
});
