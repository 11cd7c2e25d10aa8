import {
  assertWithinBound,
  check,
  checkIdentical,
  copyF32,
  F32_U,
  makeRandom,
  type MatmulBuild,
  matmulBuild,
  randomF32,
} from "./matmul_testing.ts";
import type { Ptr } from "../runtime/ptr.ts";

const VARIANTS = ["simd", "relaxed"] as const;

/** An int4 weight in a build's memory. */
interface Int4Weight {
  q: Ptr;
  scales: Ptr;
  biases: Ptr;
  N: number;
  K: number;
  groupSize: number;
}

function allocInt4(build: MatmulBuild, N: number, K: number, groupSize: number): Int4Weight {
  const { arena } = build;
  return {
    q: arena.alloc(N * K / 2),
    scales: arena.allocF32(N * K / groupSize),
    biases: arena.allocF32(N * K / groupSize),
    N,
    K,
    groupSize,
  };
}

/** Quantizes random weights with the wasm kernel (bit-identical to the reference, tested below). */
function randomInt4(
  build: MatmulBuild,
  rand: () => number,
  N: number,
  K: number,
  groupSize: number,
): Int4Weight {
  const w = randomF32(build.arena, rand, N * K, 0.5);
  const t = allocInt4(build, N, K, groupSize);
  build.wasm.int4Quantize(t.q, t.scales, t.biases, w, N, K, groupSize);
  return t;
}

/** The f32 weight the int4 one stands for, from the reference dequantizer. */
function dequantized(build: MatmulBuild, t: Int4Weight): Float32Array {
  const p = build.arena.allocF32(t.N * t.K);
  build.reference.int4Dequantize(p, t.q, t.scales, t.biases, t.N, t.K, t.groupSize);
  return build.arena.f32(p, t.N * t.K).slice();
}

/** |scale| * q + |bias| per element: bounds the terms of both the tiled and the GEMV sums. */
function magnitudes(build: MatmulBuild, t: Int4Weight): Float64Array {
  const { arena } = build;
  const q = arena.u32(t.q, t.N * t.K / 8);
  const s = arena.f32(t.scales, t.N * t.K / t.groupSize);
  const b = arena.f32(t.biases, t.N * t.K / t.groupSize);
  const out = new Float64Array(t.N * t.K);
  for (let n = 0; n < t.N; n++) {
    for (let k = 0; k < t.K; k++) {
      const nibble = (q[n * t.K / 8 + (k >> 3)] >>> ((k & 7) * 4)) & 15;
      const g = n * (t.K / t.groupSize) + Math.floor(k / t.groupSize);
      out[n * t.K + k] = Math.abs(s[g]) * nibble + Math.abs(b[g]);
    }
  }
  return out;
}

for (const variant of VARIANTS) {
  Deno.test(`int4 ${variant}: MLX packing order, nibble i of word j is column 8j + i`, () => {
    const build = matmulBuild(variant);
    const { arena } = build;
    // Quantize a hand-built row: group 0 is 0..15, 0..15 (lo 0, hi 15, scale exactly 1).
    const K = 32;
    const w = arena.allocF32(K);
    arena.f32(w, K).set(Array.from({ length: K }, (_, k) => k % 16));
    const t = allocInt4(build, 1, K, 32);
    build.wasm.int4Quantize(t.q, t.scales, t.biases, w, 1, K, 32);
    checkIdentical(
      arena.u32(t.q, 4),
      [0x76543210, 0xfedcba98, 0x76543210, 0xfedcba98],
      "packed words",
    );
    checkIdentical(arena.f32(t.scales, 1), [1], "scale");
    checkIdentical(arena.f32(t.biases, 1), [0], "bias");
    // Dequantize hand-packed words: word j = 0x(8j+7 ... 8j) mod 16 for two rows, scale 0.5,
    // bias -1 on row 0 and scale 2, bias 3 on row 1.
    const q = arena.alloc(2 * 4 * 4);
    arena.u32(q, 8).set([
      0x76543210,
      0xfedcba98,
      0x01234567,
      0x89abcdef,
      0x11111111,
      0x22222222,
      0xf0f0f0f0,
      0x0000000f,
    ]);
    const scales = arena.allocF32(2);
    arena.f32(scales, 2).set([0.5, 2]);
    const biases = arena.allocF32(2);
    arena.f32(biases, 2).set([-1, 3]);
    const nibbles = [
      ...[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15],
      ...[7, 6, 5, 4, 3, 2, 1, 0, 15, 14, 13, 12, 11, 10, 9, 8],
      ...[1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2],
      ...[0, 15, 0, 15, 0, 15, 0, 15, 15, 0, 0, 0, 0, 0, 0, 0],
    ];
    const expected = nibbles.map((v, i) => i < 32 ? 0.5 * v - 1 : 2 * v + 3);
    const out = arena.allocF32(64);
    build.wasm.int4Dequantize(out, q, scales, biases, 2, 32, 32);
    checkIdentical(arena.f32(out, 64), expected, "dequantized hand-packed words");
    // Gathering row 1 then row 0 gives the same rows.
    const ids = arena.allocI32(2);
    arena.i32(ids, 2).set([1, 0]);
    build.wasm.int4GatherRows(out, ids, q, scales, biases, 2, 32, 32);
    checkIdentical(arena.f32(out, 64), [...expected.slice(32), ...expected.slice(0, 32)], "gather");
  });

  Deno.test(`int4 ${variant}: quantize rounds half to even and handles constant groups`, () => {
    const build = matmulBuild(variant);
    const { arena } = build;
    const K = 64;
    const values = new Float32Array(K * 2);
    // Row 0, group of 32: lo 0, hi 15 -> scale 1; 2.5 -> 2, 3.5 -> 4, 0.5 -> 0, 14.5 -> 14.
    values.set([0, 15, 2.5, 3.5, 0.5, 14.5, 7.49, 7.51]);
    // Row 0, second group: all 0.25 -> scale 0, bias 0.25, q 0.
    values.fill(0.25, 32, 64);
    // Row 1: random.
    const rand = makeRandom(5);
    for (let k = 64; k < 128; k++) values[k] = rand();
    const w = arena.allocF32(values.length);
    arena.f32(w, values.length).set(values);
    const t = allocInt4(build, 2, K, 32);
    build.wasm.int4Quantize(t.q, t.scales, t.biases, w, 2, K, 32);
    const word0 = arena.u32(t.q, 1)[0];
    const first8 = Array.from({ length: 8 }, (_, i) => (word0 >>> (4 * i)) & 15);
    checkIdentical(first8, [0, 15, 2, 4, 0, 14, 7, 8], "rounded nibbles");
    checkIdentical(arena.f32(t.scales, 2), [1, 0], "scales");
    checkIdentical(arena.f32(t.biases, 2), [0, 0.25], "biases");
    checkIdentical(arena.u32(t.q + 16, 4), [0, 0, 0, 0], "constant group q");
  });

  Deno.test(`int4 ${variant}: quantize matches the reference bit for bit; round trip`, () => {
    const build = matmulBuild(variant);
    const { arena } = build;
    const rand = makeRandom(11);
    for (const groupSize of [8, 16, 32, 64, 128]) {
      const N = 7;
      const K = 256;
      const mark = arena.mark();
      const w = randomF32(arena, rand, N * K, 3);
      // A constant group, and a group with a single outlier.
      arena.f32(w, N * K).fill(-1.5, K, K + groupSize);
      arena.f32(w, N * K).fill(0.01, 2 * K, 2 * K + groupSize);
      arena.f32(w, N * K)[2 * K + 5] = 40;
      const a = allocInt4(build, N, K, groupSize);
      const b = allocInt4(build, N, K, groupSize);
      build.wasm.int4Quantize(a.q, a.scales, a.biases, w, N, K, groupSize);
      build.reference.int4Quantize(b.q, b.scales, b.biases, w, N, K, groupSize);
      const label = `groupSize ${groupSize}`;
      checkIdentical(arena.u32(a.q, N * K / 8), arena.u32(b.q, N * K / 8), `${label} q`);
      const groups = N * K / groupSize;
      checkIdentical(arena.f32(a.scales, groups), arena.f32(b.scales, groups), `${label} scales`);
      checkIdentical(arena.f32(a.biases, groups), arena.f32(b.biases, groups), `${label} biases`);
      // Round trip: within half a step, plus a few f32 roundings of the values involved.
      const back = arena.allocF32(N * K);
      build.wasm.int4Dequantize(back, a.q, a.scales, a.biases, N, K, groupSize);
      const orig = arena.f32(w, N * K);
      const got = arena.f32(back, N * K);
      const scales = arena.f32(a.scales, groups);
      const biases = arena.f32(a.biases, groups);
      for (let i = 0; i < N * K; i++) {
        const g = Math.floor(i / groupSize);
        const s = scales[g];
        const slack = 4 * F32_U * (Math.abs(orig[i]) + Math.abs(biases[g]) + 15 * s);
        const err = Math.abs(got[i] - orig[i]);
        check(err <= s / 2 + slack, `${label}: element ${i} error ${err} > scale/2 = ${s / 2}`);
      }
      arena.release(mark);
    }
  });

  Deno.test(`int4 ${variant}: dequantize and gather equal the reference exactly`, () => {
    const build = matmulBuild(variant);
    const { arena } = build;
    const rand = makeRandom(13);
    for (const groupSize of [8, 16, 32, 64, 128]) {
      const N = 9;
      const K = 384;
      const t = randomInt4(build, rand, N, K, groupSize);
      const ref = dequantized(build, t);
      const out = arena.allocF32(N * K);
      build.wasm.int4Dequantize(out, t.q, t.scales, t.biases, N, K, groupSize);
      checkIdentical(arena.f32(out, N * K), ref, `dequantize g${groupSize}`);
      const rows = [8, 0, 3, 3, 7];
      const ids = arena.allocI32(rows.length);
      arena.i32(ids, rows.length).set(rows);
      const gathered = arena.allocF32(rows.length * K);
      build.wasm.int4GatherRows(gathered, ids, t.q, t.scales, t.biases, rows.length, K, groupSize);
      const expected = rows.flatMap((r) => Array.from(ref.subarray(r * K, (r + 1) * K)));
      checkIdentical(arena.f32(gathered, rows.length * K), expected, `gather g${groupSize}`);
    }
  });
}

/** x·Wᵀ (wasm) against the reference on the same int4 weight, within the γ_K-style bound. */
function checkXWt(
  build: MatmulBuild,
  rand: () => number,
  M: number,
  t: Int4Weight,
  alpha: number,
  acc: number,
): void {
  const { arena } = build;
  const { N, K } = t;
  const x = randomF32(arena, rand, M * K);
  const out = randomF32(arena, rand, M * N, 2);
  const ref = copyF32(arena, out, M * N);
  const prior = arena.f32(out, M * N).slice();
  build.wasm.int4MatmulXWt(out, x, t.q, t.scales, t.biases, M, N, K, t.groupSize, alpha, acc);
  build.reference.int4MatmulXWt(ref, x, t.q, t.scales, t.biases, M, N, K, t.groupSize, alpha, acc);
  const mag = magnitudes(build, t);
  const xv = arena.f32(x, M * K);
  const bound = new Float64Array(M * N);
  for (let i = 0; i < M; i++) {
    for (let n = 0; n < N; n++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += Math.abs(xv[i * K + k]) * mag[n * K + k];
      bound[i * N + n] = Math.abs(alpha) * s + (acc ? Math.abs(prior[i * N + n]) : 0);
    }
  }
  // (K + 8) u: γ_K for the sum, the two roundings of w = s*q + b (the GEMV path sums s*Σqx and
  // b*Σx instead of Σ w x), and the alpha / prior / final roundings.
  assertWithinBound(
    arena.f32(out, M * N),
    arena.f32(ref, M * N),
    bound,
    (K + 8) * F32_U,
    `${build.variant} int4MatmulXWt M=${M} N=${N} K=${K} g${t.groupSize} alpha=${alpha} acc=${acc}`,
  );
}

/** g·W (wasm) against the reference. */
function checkGW(
  build: MatmulBuild,
  rand: () => number,
  M: number,
  t: Int4Weight,
  alpha: number,
  acc: number,
): void {
  const { arena } = build;
  const { N, K } = t;
  const g = randomF32(arena, rand, M * N);
  const out = randomF32(arena, rand, M * K, 2);
  const ref = copyF32(arena, out, M * K);
  const prior = arena.f32(out, M * K).slice();
  build.wasm.int4MatmulGW(out, g, t.q, t.scales, t.biases, M, N, K, t.groupSize, alpha, acc);
  build.reference.int4MatmulGW(ref, g, t.q, t.scales, t.biases, M, N, K, t.groupSize, alpha, acc);
  const mag = magnitudes(build, t);
  const gv = arena.f32(g, M * N);
  const bound = new Float64Array(M * K);
  for (let i = 0; i < M; i++) {
    for (let n = 0; n < N; n++) {
      const gi = Math.abs(gv[i * N + n]);
      for (let k = 0; k < K; k++) bound[i * K + k] += Math.abs(alpha) * gi * mag[n * K + k];
    }
    for (let k = 0; k < K; k++) bound[i * K + k] += acc ? Math.abs(prior[i * K + k]) : 0;
  }
  assertWithinBound(
    arena.f32(out, M * K),
    arena.f32(ref, M * K),
    bound,
    (N + 8) * F32_U,
    `${build.variant} int4MatmulGW M=${M} N=${N} K=${K} g${t.groupSize} alpha=${alpha} acc=${acc}`,
  );
}

for (const variant of VARIANTS) {
  Deno.test(`int4 ${variant}: x·Wᵀ matches the reference (GEMV M <= 8 and tiled), ragged`, () => {
    const build = matmulBuild(variant);
    const { arena } = build;
    const rand = makeRandom(21);
    for (const [K, groupSize] of [[32, 32], [64, 64], [128, 64], [128, 128], [96, 32], [48, 16]]) {
      for (let N = 1; N <= 17; N++) {
        const mark = arena.mark();
        const t = randomInt4(build, rand, N, K, groupSize);
        for (let M = 1; M <= 17; M += M < 10 ? 1 : 7) {
          const mode = (M + N) % 4;
          checkXWt(build, rand, M, t, mode < 2 ? 1 : -1.25, mode % 2);
        }
        arena.release(mark);
      }
    }
    for (const [M, N, K, groupSize] of [[37, 129, 640, 64], [3, 70, 1024, 128], [9, 33, 320, 32]]) {
      const mark = arena.mark();
      const t = randomInt4(build, rand, N, K, groupSize);
      checkXWt(build, rand, M, t, 1, 0);
      checkXWt(build, rand, M, t, 0.5, 1);
      arena.release(mark);
    }
  });

  Deno.test(`int4 ${variant}: g·W matches the reference, ragged`, () => {
    const build = matmulBuild(variant);
    const { arena } = build;
    const rand = makeRandom(23);
    for (const [K, groupSize] of [[32, 32], [64, 64], [192, 64], [128, 128], [24, 8]]) {
      for (let N = 1; N <= 17; N++) {
        const mark = arena.mark();
        const t = randomInt4(build, rand, N, K, groupSize);
        for (let M = 1; M <= 17; M += 3) {
          const mode = (M + N) % 4;
          checkGW(build, rand, M, t, mode < 2 ? 1 : -1.25, mode % 2);
        }
        arena.release(mark);
      }
    }
    for (const [M, N, K, groupSize] of [[37, 300, 192, 64], [7, 1100, 64, 64], [1, 9, 1152, 128]]) {
      const mark = arena.mark();
      const t = randomInt4(build, rand, N, K, groupSize);
      checkGW(build, rand, M, t, 1, 0);
      checkGW(build, rand, M, t, 0.5, 1);
      arena.release(mark);
    }
  });

  Deno.test(`int4 ${variant}: tiled int4 matmuls equal f32 GEMM on the dequantized W exactly`, () => {
    // Same engine, same packing order, bit-identical dequantized panels: the results must agree
    // to the bit (the GEMV path, M <= 8, is covered by the bound tests above).
    const build = matmulBuild(variant);
    const { arena } = build;
    const rand = makeRandom(31);
    for (const [M, N, K, groupSize] of [[40, 70, 640, 64], [9, 17, 96, 32], [300, 24, 128, 128]]) {
      const mark = arena.mark();
      const t = randomInt4(build, rand, N, K, groupSize);
      const wp = arena.allocF32(N * K);
      build.wasm.int4Dequantize(wp, t.q, t.scales, t.biases, N, K, groupSize);
      const x = randomF32(arena, rand, M * K);
      const a = arena.allocF32(M * N);
      const b = arena.allocF32(M * N);
      build.wasm.int4MatmulXWt(a, x, t.q, t.scales, t.biases, M, N, K, groupSize, 0.75, 0);
      build.wasm.matmulABt(b, x, wp, M, N, K, 0.75, 0);
      checkIdentical(arena.f32(a, M * N), arena.f32(b, M * N), `x·Wᵀ ${M}x${N}x${K}`);
      const g = randomF32(arena, rand, M * N);
      const c = arena.allocF32(M * K);
      const d = arena.allocF32(M * K);
      build.wasm.int4MatmulGW(c, g, t.q, t.scales, t.biases, M, N, K, groupSize, 1, 0);
      build.wasm.matmulAB(d, g, wp, M, K, N, 1, 0);
      checkIdentical(arena.f32(c, M * K), arena.f32(d, M * K), `g·W ${M}x${N}x${K}`);
      arena.release(mark);
    }
  });
}
