/**
 * Reference int4 kernels over the MLX "affine" layout (see abi.ts): `q: u32 [N, K/8]` with nibble
 * i of word j holding column 8j + i, and f32 `scales` / `biases` `[N, K/groupSize]`.
 *
 * Quantization rule (the wasm build matches it bit for bit; every step is an f32 operation):
 *   lo = min(group), hi = max(group), scale = (hi - lo) / 15, bias = lo,
 *   q = clamp(roundHalfEven((w - lo) / scale), 0, 15), and q = 0 when scale == 0.
 * Dequantization is `w = scale * q + bias` as an f32 multiply then an f32 add (never fused), so
 * every build produces the same dequantized weights.
 */
import type { Kernels } from "../abi.ts";
import type { Ptr } from "../../runtime/ptr.ts";
import type { MemViews } from "./views.ts";

const f32 = Math.fround;

/** Rounds a non-negative number to the nearest integer, ties to even (IEEE `nearest`). */
export function roundHalfEven(v: number): number {
  const r = Math.floor(v);
  const d = v - r;
  if (d > 0.5) return r + 1;
  if (d < 0.5) return r;
  return r % 2 === 0 ? r : r + 1;
}

/** Checks the int4 shape rules; the message names the argument that is wrong. */
export function checkInt4Shape(kernel: string, K: number, groupSize: number): void {
  if (groupSize <= 0 || groupSize % 8 !== 0 || K % groupSize !== 0) {
    throw new RangeError(
      `${kernel}: groupSize ${groupSize} must be a positive multiple of 8 dividing K = ${K}`,
    );
  }
}

/** Quantizes f32 `w [N,K]` into `q`, `scales`, `biases` (arrays sized as in abi.ts). */
export function quantizeInt4(
  q: Uint32Array,
  scales: Float32Array,
  biases: Float32Array,
  w: Float32Array,
  N: number,
  K: number,
  groupSize: number,
): void {
  checkInt4Shape("int4Quantize", K, groupSize);
  const groups = K / groupSize;
  q.fill(0, 0, N * (K / 8));
  for (let n = 0; n < N; n++) {
    for (let g = 0; g < groups; g++) {
      const k0 = g * groupSize;
      let lo = w[n * K + k0];
      let hi = lo;
      for (let k = k0 + 1; k < k0 + groupSize; k++) {
        lo = Math.min(lo, w[n * K + k]);
        hi = Math.max(hi, w[n * K + k]);
      }
      const scale = f32(f32(hi - lo) / 15);
      scales[n * groups + g] = scale;
      biases[n * groups + g] = lo;
      if (scale === 0) continue; // all q stay 0
      for (let k = k0; k < k0 + groupSize; k++) {
        const v = f32(f32(w[n * K + k] - lo) / scale);
        const nibble = Math.min(15, Math.max(0, roundHalfEven(v)));
        q[n * (K / 8) + (k >> 3)] |= nibble << ((k & 7) * 4);
      }
    }
  }
}

/** Dequantized element (n, k) of an int4 weight with K columns. */
export function dequantizeInt4At(
  q: Uint32Array,
  scales: Float32Array,
  biases: Float32Array,
  K: number,
  groupSize: number,
  n: number,
  k: number,
): number {
  const nibble = (q[n * (K / 8) + (k >> 3)] >>> ((k & 7) * 4)) & 15;
  const g = n * (K / groupSize) + Math.floor(k / groupSize);
  return f32(f32(scales[g] * nibble) + biases[g]);
}

/** Reference implementations of the int4 kernels over `m`'s memory. */
export function int4Reference(
  m: MemViews,
): Pick<
  Kernels,
  "int4Quantize" | "int4Dequantize" | "int4MatmulXWt" | "int4MatmulGW" | "int4GatherRows"
> {
  const views = (q: Ptr, scales: Ptr, biases: Ptr, N: number, K: number, groupSize: number) => ({
    q: m.u32(q, N * (K / 8)),
    s: m.f32(scales, N * (K / groupSize)),
    b: m.f32(biases, N * (K / groupSize)),
  });
  return {
    int4Quantize(q, scales, biases, w, N, K, groupSize) {
      checkInt4Shape("int4Quantize", K, groupSize);
      const v = views(q, scales, biases, N, K, groupSize);
      quantizeInt4(v.q, v.s, v.b, m.f32(w, N * K), N, K, groupSize);
    },
    int4Dequantize(out, q, scales, biases, N, K, groupSize) {
      checkInt4Shape("int4Dequantize", K, groupSize);
      const v = views(q, scales, biases, N, K, groupSize);
      const o = m.f32(out, N * K);
      for (let n = 0; n < N; n++) {
        for (let k = 0; k < K; k++) {
          o[n * K + k] = dequantizeInt4At(v.q, v.s, v.b, K, groupSize, n, k);
        }
      }
    },
    int4MatmulXWt(out, x, q, scales, biases, M, N, K, groupSize, alpha, acc) {
      checkInt4Shape("int4MatmulXWt", K, groupSize);
      const v = views(q, scales, biases, N, K, groupSize);
      const xs = m.f32(x, M * K);
      const o = m.f32(out, M * N);
      const row = new Float64Array(K);
      for (let n = 0; n < N; n++) {
        for (let k = 0; k < K; k++) row[k] = dequantizeInt4At(v.q, v.s, v.b, K, groupSize, n, k);
        for (let i = 0; i < M; i++) {
          let sum = 0;
          for (let k = 0; k < K; k++) sum += xs[i * K + k] * row[k];
          o[i * N + n] = (acc ? o[i * N + n] : 0) + alpha * sum;
        }
      }
    },
    int4MatmulGW(out, g, q, scales, biases, M, N, K, groupSize, alpha, acc) {
      checkInt4Shape("int4MatmulGW", K, groupSize);
      const v = views(q, scales, biases, N, K, groupSize);
      const gs = m.f32(g, M * N);
      const o = m.f32(out, M * K);
      const sums = new Float64Array(K);
      for (let i = 0; i < M; i++) {
        sums.fill(0);
        for (let n = 0; n < N; n++) {
          const gi = gs[i * N + n];
          for (let k = 0; k < K; k++) {
            sums[k] += gi * dequantizeInt4At(v.q, v.s, v.b, K, groupSize, n, k);
          }
        }
        for (let k = 0; k < K; k++) o[i * K + k] = (acc ? o[i * K + k] : 0) + alpha * sums[k];
      }
    },
    int4GatherRows(out, ids, q, scales, biases, T, K, groupSize) {
      checkInt4Shape("int4GatherRows", K, groupSize);
      const idv = m.i32(ids, T);
      const o = m.f32(out, T * K);
      const words = K / 8;
      const groups = K / groupSize;
      for (let t = 0; t < T; t++) {
        const n = idv[t];
        // Views over just this row, so no table size is needed (the ABI does not pass N).
        const qr = m.u32(q + n * words * 4, words);
        const sr = m.f32(scales + n * groups * 4, groups);
        const br = m.f32(biases + n * groups * 4, groups);
        for (let k = 0; k < K; k++) o[t * K + k] = dequantizeInt4At(qr, sr, br, K, groupSize, 0, k);
      }
    },
  };
}
