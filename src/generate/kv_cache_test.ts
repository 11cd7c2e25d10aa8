import assert from "node:assert/strict";
import { loadKernelsSync } from "../kernels/wasm.ts";
import { tinyConfig } from "../model/random_weights.ts";
import type { Arena } from "../runtime/arena.ts";
import { KvCache } from "./kv_cache.ts";

/** `M` token rows of `[numKvHeads * headDim]` in the arena: value = 1000·token + index in row. */
function tokenRows(arena: Arena, M: number, rowFloats: number, base: number) {
  const p = arena.allocF32(M * rowFloats);
  const rows = new Float32Array(arena.memory.buffer, p, M * rowFloats);
  for (let t = 0; t < M; t++) {
    for (let j = 0; j < rowFloats; j++) rows[t * rowFloats + j] = 1000 * (base + t) + j;
  }
  return p;
}

/** Row `slot` of kv head `head` of a `[capacity, headDim]` block at `p`. */
function cachedRow(arena: Arena, p: number, slot: number, headDim: number): number[] {
  return Array.from(new Float32Array(arena.memory.buffer, p + slot * headDim * 4, headDim));
}

Deno.test("KV cache: each token's row is scattered head-major, one aligned block per kv head", () => {
  const { arena } = loadKernelsSync({ variant: "reference" });
  const config = tinyConfig("qwen2", 2);
  const cache = new KvCache(config, arena, 8);
  const hd = config.headDim;
  assert.deepEqual(cache.capacity, [8, 8]);
  assert.deepEqual(cache.ring, [false, false]);
  // K and V of both layers, each numKvHeads · 8 rows · headDim floats.
  assert.equal(cache.bytes, 2 * 2 * config.numKvHeads * 8 * hd * 4);
  const k = tokenRows(arena, 3, cache.rowFloats, 0);
  const v = tokenRows(arena, 3, cache.rowFloats, 50);
  cache.store(1, 2, k, v, 3);
  for (let h = 0; h < config.numKvHeads; h++) {
    assert.equal(cache.kHead(1, h) % 64, 0);
    for (let t = 0; t < 3; t++) {
      const want = Array.from({ length: hd }, (_, j) => 1000 * t + h * hd + j);
      assert.deepEqual(
        cachedRow(arena, cache.kHead(1, h), 2 + t, hd),
        want,
        `K head ${h} row ${t}`,
      );
      const wantV = want.map((x) => x + 50_000);
      assert.deepEqual(cachedRow(arena, cache.vHead(1, h), 2 + t, hd), wantV, `V head ${h}`);
    }
  }
  // Layer 0 was not written: its slots are still the arena's fresh zeros.
  assert.deepEqual(cachedRow(arena, cache.kHead(0, 0), 2, hd), new Array(hd).fill(0));
  assert.equal(cache.length, 0, "store does not move length");
});

Deno.test("KV cache: a sliding layer shorter than maxLen is a ring keeping the last window", () => {
  const { arena } = loadKernelsSync({ variant: "reference" });
  const config = tinyConfig("gemma3", 3); // sliding, full, sliding; window 3
  const window = config.slidingWindow!;
  const cache = new KvCache(config, arena, 10);
  assert.deepEqual(cache.capacity, [window, 10, window]);
  assert.deepEqual(cache.ring, [true, false, true]);
  assert.equal(cache.slot(0, 7), 7 % window);
  assert.equal(cache.slot(1, 7), 7);
  const hd = config.headDim;
  // Five positions stored at once: a ring keeps positions 2, 3, 4 in slots 2, 0, 1.
  const k = tokenRows(arena, 5, cache.rowFloats, 0);
  cache.store(0, 0, k, k, 5);
  for (const pos of [2, 3, 4]) {
    const want = Array.from({ length: hd }, (_, j) => 1000 * pos + j);
    assert.deepEqual(cachedRow(arena, cache.kHead(0, 0), pos % window, hd), want, `pos ${pos}`);
  }
  // A window at least maxLen long is no ring.
  const short = new KvCache(config, arena, window);
  assert.deepEqual(short.ring, [false, false, false]);
});

Deno.test("KV cache: a prefix is reusable unless a ring has overwritten what it still needs", () => {
  const { arena } = loadKernelsSync({ variant: "reference" });
  const cache = new KvCache(tinyConfig("gemma3", 3), arena, 10); // rings of 3
  cache.length = 6; // the rings hold positions 3, 4, 5
  assert.equal(cache.reusablePrefix(6), 6);
  // Continuing at 5 needs 3 .. 4: held.
  assert.equal(cache.reusablePrefix(5), 5);
  // Continuing at 4 needs 2 .. 3, but 2 was overwritten by 5.
  assert.equal(cache.reusablePrefix(4), 0);
  assert.equal(cache.reusablePrefix(99), 6, "never more than what is cached");
  const full = new KvCache(tinyConfig("qwen2", 2), arena, 10);
  full.length = 6;
  assert.equal(full.reusablePrefix(2), 2, "full attention keeps every position");
});

Deno.test("KV cache: positions outside maxLen and a bad maxLen are refused, naming the limit", () => {
  const { arena } = loadKernelsSync({ variant: "reference" });
  const cache = new KvCache(tinyConfig("qwen2", 1), arena, 4);
  const k = tokenRows(arena, 2, cache.rowFloats, 0);
  assert.throws(() => cache.store(0, 3, k, k, 2), /rows 3\.\.4 outside 0\.\.3/);
  cache.length = 3;
  cache.checkRoom(1);
  assert.throws(() => cache.checkRoom(2), /KV cache full: 3 \+ 2 positions exceed its 4/);
  assert.throws(() => new KvCache(tinyConfig("qwen2", 1), arena, 0), /maxLen must be a positive/);
});
