/**
 * Rows for bench/kernels.ts: the non-GEMM kernels (norm, RoPE, SwiGLU, attention, embedding,
 * fused cross-entropy, element-wise, optimizers) at Qwen2.5-0.5B shapes (hidden 896,
 * intermediate 4864, 14/2 heads of 64, seq 256; attention also at seq 1024).
 * Imports types only, so bench/kernels.ts can spread these rows without an import cycle.
 */
import type { BenchBuild, BenchRow } from "./types.ts";

function random(build: BenchBuild, n: number, seed: number, scale = 1): number {
  const p = build.arena.allocF32(n);
  const v = build.arena.f32(p, n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    v[i] = (s / 2 ** 31 - 1) * scale;
  }
  return p;
}

/** cos/sin tables of random angles: a true rotation, so repeated in-place calls keep |x|. */
function rotation(b: BenchBuild, n: number, seed: number): { c: number; s: number } {
  const a = random(b, n, seed, 3);
  const c = b.arena.allocF32(n), s = b.arena.allocF32(n);
  const av = b.arena.f32(a, n), cv = b.arena.f32(c, n), sv = b.arena.f32(s, n);
  for (let i = 0; i < n; i++) {
    cv[i] = Math.cos(av[i]);
    sv[i] = Math.sin(av[i]);
  }
  return { c, s };
}

/** Causal attention flops: each of `passes` T×T/2 products over hd, 2 flops per term, per head. */
function attentionFlops(T: number, Hq: number, hd: number, passes: number): number {
  return passes * 2 * hd * Hq * (T * (T + 1) / 2);
}

function attentionRows(T: number, Hq: number, Hkv: number, hd: number): BenchRow[] {
  const shape = `T=${T} Hq=${Hq} Hkv=${Hkv} hd=${hd}`;
  const inputs = (b: BenchBuild) => ({
    q: random(b, T * Hq * hd, 11),
    k: random(b, T * Hkv * hd, 12),
    v: random(b, T * Hkv * hd, 13),
    out: b.arena.allocF32(T * Hq * hd),
    lse: b.arena.allocF32(Hq * T),
  });
  return [
    {
      kernel: "attentionForward",
      shape,
      flops: attentionFlops(T, Hq, hd, 2),
      needs: ["attentionForward"],
      setup(b) {
        const x = inputs(b);
        return () =>
          b.kernels.attentionForward(x.out, x.lse, x.q, x.k, x.v, T, Hq, Hkv, hd, hd ** -0.5, 0);
      },
    },
    {
      kernel: "attentionBackward",
      shape,
      // Rebuilt scores, dout·v, dq, dk, dv.
      flops: attentionFlops(T, Hq, hd, 5),
      needs: ["attentionForward", "attentionBackward"],
      setup(b) {
        const x = inputs(b);
        const scale = hd ** -0.5;
        b.kernels.attentionForward(x.out, x.lse, x.q, x.k, x.v, T, Hq, Hkv, hd, scale, 0);
        const dout = random(b, T * Hq * hd, 14);
        const dq = b.arena.allocF32(T * Hq * hd);
        const dk = b.arena.allocF32(T * Hkv * hd);
        const dv = b.arena.allocF32(T * Hkv * hd);
        return () =>
          b.kernels.attentionBackward(
            dq,
            dk,
            dv,
            dout,
            x.q,
            x.k,
            x.v,
            x.out,
            x.lse,
            T,
            Hq,
            Hkv,
            hd,
            scale,
            0,
          );
      },
    },
  ];
}

const T = 256, D = 896, I = 4864;

/** Non-GEMM kernel rows, in print order. */
export const OPS_ROWS: BenchRow[] = [
  {
    kernel: "rmsnormForward",
    shape: `T=${T} D=${D}`,
    flops: 0,
    needs: ["rmsnormForward"],
    setup(b) {
      const x = random(b, T * D, 1), w = random(b, D, 2);
      const out = b.arena.allocF32(T * D), rstd = b.arena.allocF32(T);
      return () => b.kernels.rmsnormForward(out, rstd, x, w, T, D, 1e-6);
    },
  },
  {
    kernel: "rmsnormBackward",
    shape: `T=${T} D=${D}`,
    flops: 0,
    needs: ["rmsnormForward", "rmsnormBackward"],
    setup(b) {
      const x = random(b, T * D, 1), w = random(b, D, 2), g = random(b, T * D, 3);
      const out = b.arena.allocF32(T * D), rstd = b.arena.allocF32(T), dx = b.arena.allocF32(T * D);
      b.kernels.rmsnormForward(out, rstd, x, w, T, D, 1e-6);
      return () => b.kernels.rmsnormBackward(dx, 0, g, x, w, rstd, T, D, 0);
    },
  },
  {
    kernel: "ropeApply",
    shape: `T=${T} H=14 hd=64`,
    flops: 0,
    needs: ["ropeApply"],
    setup(b) {
      const x = random(b, T * 14 * 64, 4), { c, s } = rotation(b, T * 32, 5);
      return () => b.kernels.ropeApply(x, c, s, T, 14, 64, 0);
    },
  },
  {
    kernel: "swigluForward",
    shape: `n=${T}x${I}`,
    flops: 0,
    needs: ["swigluForward"],
    setup(b) {
      const g = random(b, T * I, 7, 4), u = random(b, T * I, 8), out = b.arena.allocF32(T * I);
      return () => b.kernels.swigluForward(out, g, u, T * I);
    },
  },
  {
    kernel: "swigluBackward",
    shape: `n=${T}x${I}`,
    flops: 0,
    needs: ["swigluBackward"],
    setup(b) {
      const g = random(b, T * I, 7, 4), u = random(b, T * I, 8), d = random(b, T * I, 9);
      const dg = b.arena.allocF32(T * I), du = b.arena.allocF32(T * I);
      return () => b.kernels.swigluBackward(dg, du, d, g, u, T * I);
    },
  },
  ...attentionRows(256, 14, 2, 64),
  ...attentionRows(1024, 14, 2, 64),
  ...attentionRows(256, 12, 2, 128),
  {
    kernel: "ceChunkForward",
    shape: `T=${T} Vc=4096`,
    flops: 0,
    needs: ["ceChunkForward"],
    setup(b) {
      const logits = random(b, T * 4096, 10, 8);
      const targets = b.arena.allocI32(T);
      b.arena.i32(targets, T).fill(5);
      const m = b.arena.allocF32(T), s = b.arena.allocF32(T), tl = b.arena.allocF32(T);
      return () => {
        b.arena.f32(m, T).fill(-Infinity);
        b.kernels.ceChunkForward(logits, T, 4096, 0, targets, m, s, tl);
      };
    },
  },
  {
    kernel: "ceChunkBackward",
    shape: `T=${T} Vc=4096`,
    flops: 0,
    needs: ["ceChunkBackward"],
    setup(b) {
      const logits = random(b, T * 4096, 10, 8);
      const targets = b.arena.allocI32(T);
      b.arena.i32(targets, T).fill(5);
      const lse = random(b, T, 11);
      // In place: values shrink towards 0 over calls, which does not change the work done.
      return () => b.kernels.ceChunkBackward(logits, T, 4096, 0, targets, lse, 1 / T);
    },
  },
  {
    kernel: "embeddingGather",
    shape: `T=${T} D=${D}`,
    flops: 0,
    needs: ["embeddingGather"],
    setup(b) {
      const V = 4096;
      const table = random(b, V * D, 12), ids = b.arena.allocI32(T), out = b.arena.allocF32(T * D);
      b.arena.i32(ids, T).set(Array.from({ length: T }, (_, i) => (i * 2654435761) % V));
      return () => b.kernels.embeddingGather(out, ids, table, T, D);
    },
  },
  {
    kernel: "adamwStep",
    shape: "n=1M",
    flops: 0,
    needs: ["adamwStep"],
    setup(b) {
      const n = 1 << 20;
      const p = random(b, n, 13), g = random(b, n, 14);
      const m = b.arena.allocZeroed(n * 4), v = b.arena.allocZeroed(n * 4);
      return () => b.kernels.adamwStep(p, g, m, v, n, 1e-4, 0.9, 0.999, 1e-8, 0, 0.1, 0.001);
    },
  },
  {
    kernel: "sumSquares",
    shape: "n=1M",
    flops: 0,
    needs: ["sumSquares"],
    setup(b) {
      const x = random(b, 1 << 20, 15);
      return () => void b.kernels.sumSquares(x, 1 << 20);
    },
  },
];
