/**
 * Deno.bench for the non-GEMM kernels: each family on the relaxed wasm build, the simd128 build
 * and the plain-TS reference (the baseline), at Qwen2.5-0.5B shapes (smaller where the reference
 * would take seconds).
 *
 *   deno bench -A bench/ops_bench.ts
 */
import type { Kernels } from "../src/kernels/abi.ts";
import type { Arena } from "../src/runtime/arena.ts";
import { loadKernelsSync } from "../src/kernels/wasm.ts";

type Variant = "relaxed" | "simd" | "reference";
const VARIANTS: Variant[] = ["relaxed", "simd", "reference"];
const builds = new Map<Variant, { kernels: Kernels; arena: Arena }>(
  VARIANTS.map((v) => [v, loadKernelsSync({ variant: v })]),
);

function random(arena: Arena, n: number, seed: number, scale = 1): number {
  const p = arena.allocF32(n);
  const v = arena.f32(p, n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    v[i] = (s / 2 ** 31 - 1) * scale;
  }
  return p;
}

/** cos/sin tables of random angles: a true rotation, so repeated in-place calls keep |x|. */
function rotation(arena: Arena, n: number, seed: number): { c: number; s: number } {
  const a = random(arena, n, seed, 3);
  const c = arena.allocF32(n), s = arena.allocF32(n);
  const av = arena.f32(a, n), cv = arena.f32(c, n), sv = arena.f32(s, n);
  for (let i = 0; i < n; i++) {
    cv[i] = Math.cos(av[i]);
    sv[i] = Math.sin(av[i]);
  }
  return { c, s };
}

/** Registers one bench per variant; `setup` allocates inputs and returns the timed call. */
function family(name: string, setup: (k: Kernels, a: Arena) => () => void): void {
  for (const variant of VARIANTS) {
    const { kernels, arena } = builds.get(variant)!;
    const call = setup(kernels, arena);
    Deno.bench({
      name: `${name} [${variant}]`,
      group: name,
      baseline: variant === "reference",
      fn: call,
    });
  }
}

const T = 256, D = 896, I = 4864;

family(`rmsnorm fwd+bwd T=${T} D=${D}`, (k, a) => {
  const x = random(a, T * D, 1), w = random(a, D, 2), g = random(a, T * D, 3);
  const out = a.allocF32(T * D), rstd = a.allocF32(T), dx = a.allocF32(T * D);
  return () => {
    k.rmsnormForward(out, rstd, x, w, T, D, 1e-6);
    k.rmsnormBackward(dx, 0, g, x, w, rstd, T, D, 0);
  };
});

family(`rope fwd T=${T} H=14 hd=64`, (k, a) => {
  const x = random(a, T * 14 * 64, 4), { c, s } = rotation(a, T * 32, 5);
  return () => k.ropeApply(x, c, s, T, 14, 64, 0);
});

family(`swiglu fwd+bwd n=${T}x${I}`, (k, a) => {
  const n = T * I;
  const g = random(a, n, 7, 4), u = random(a, n, 8), d = random(a, n, 9);
  const out = a.allocF32(n), dg = a.allocF32(n), du = a.allocF32(n);
  return () => {
    k.swigluForward(out, g, u, n);
    k.swigluBackward(dg, du, d, g, u, n);
  };
});

// T = 128 keeps the O(T²) reference under a second per call.
family("attention fwd+bwd T=128 Hq=14 Hkv=2 hd=64", (k, a) => {
  const [t, hq, hkv, hd] = [128, 14, 2, 64];
  const q = random(a, t * hq * hd, 10),
    kk = random(a, t * hkv * hd, 11),
    v = random(a, t * hkv * hd, 12);
  const out = a.allocF32(t * hq * hd), lse = a.allocF32(hq * t), dout = random(a, t * hq * hd, 13);
  const dq = a.allocF32(t * hq * hd), dk = a.allocF32(t * hkv * hd), dv = a.allocF32(t * hkv * hd);
  return () => {
    k.attentionForward(out, lse, q, kk, v, t, hq, hkv, hd, 0.125, 0);
    k.attentionBackward(dq, dk, dv, dout, q, kk, v, out, lse, t, hq, hkv, hd, 0.125, 0);
  };
});

family(`cross-entropy chunk fwd+bwd T=${T} Vc=4096`, (k, a) => {
  const Vc = 4096;
  const src = random(a, T * Vc, 14, 8), logits = a.allocF32(T * Vc);
  const targets = a.allocI32(T);
  a.i32(targets, T).fill(5);
  const m = a.allocF32(T), s = a.allocF32(T), tl = a.allocF32(T), lse = random(a, T, 15);
  return () => {
    a.f32(logits, T * Vc).set(a.f32(src, T * Vc));
    a.f32(m, T).fill(-Infinity);
    a.f32(s, T).fill(0);
    k.ceChunkForward(logits, T, Vc, 0, targets, m, s, tl);
    k.ceChunkBackward(logits, T, Vc, 0, targets, lse, 1 / T);
  };
});

family(`embedding gather+scatter T=${T} D=${D}`, (k, a) => {
  const V = 4096;
  const table = random(a, V * D, 16), ids = a.allocI32(T), out = a.allocF32(T * D);
  a.i32(ids, T).set(Array.from({ length: T }, (_, i) => (i * 2654435761) % V));
  return () => {
    k.embeddingGather(out, ids, table, T, D);
    k.embeddingScatterAdd(table, ids, out, T, D);
  };
});

family("elementwise add+axpy+scale+sumSquares n=1M", (k, a) => {
  const n = 1 << 20;
  const x = random(a, n, 17), y = random(a, n, 18), o = a.allocF32(n);
  return () => {
    k.add(o, x, y, n);
    k.axpy(o, x, 0.5, n);
    k.scale(o, 0.25, n);
    k.sumSquares(o, n);
  };
});

family("optim sgd+adamw n=1M", (k, a) => {
  const n = 1 << 20;
  const p = random(a, n, 19), g = random(a, n, 20);
  const m = a.allocZeroed(n * 4), v = a.allocZeroed(n * 4);
  return () => {
    k.sgdStep(p, g, n, 1e-4, 0);
    k.adamwStep(p, g, m, v, n, 1e-4, 0.9, 0.999, 1e-8, 0, 0.1, 0.001);
  };
});
