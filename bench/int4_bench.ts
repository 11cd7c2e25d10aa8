/**
 * int4 kernels: the wasm builds against the plain-TS reference on Qwen2.5-0.5B widths (hidden 896,
 * intermediate 4864) with few enough rows for the reference to finish.
 *
 *   deno bench -A bench/int4_bench.ts
 */
import { createReferenceKernels } from "../src/kernels/reference/mod.ts";
import { Arena } from "../src/runtime/arena.ts";
import type { Kernels } from "../src/kernels/abi.ts";
import { benchBuild } from "./kernels.ts";

const GROUP = 64;

/** Random W [N,K] quantized by `kernels`, and f32 operands for an M-row product. */
function operands(kernels: Kernels, arena: Arena, M: number, N: number, K: number) {
  const w = arena.allocF32(N * K);
  arena.f32(w, N * K).forEach((_, i, v) => (v[i] = Math.sin(i * 0.37)));
  const q = arena.alloc(N * K / 2);
  const scales = arena.allocF32(N * K / GROUP);
  const biases = arena.allocF32(N * K / GROUP);
  kernels.int4Quantize(q, scales, biases, w, N, K, GROUP);
  const x = arena.allocF32(M * Math.max(N, K));
  arena.f32(x, M * Math.max(N, K)).forEach((_, i, v) => (v[i] = Math.cos(i)));
  const out = arena.allocF32(M * Math.max(N, K));
  const ids = arena.allocI32(M);
  arena.i32(ids, M).forEach((_, i, v) => (v[i] = (i * 7919) % N));
  return { w, q, scales, biases, x, out, ids };
}

const referenceMemory = new WebAssembly.Memory({ initial: 1 });
const reference: Kernels = createReferenceKernels(referenceMemory);
const referenceArena = new Arena(referenceMemory, reference.heapBase());
const builds = [benchBuild("simd"), benchBuild("relaxed")];
const all = [
  { name: "reference (plain TS)", kernels: reference, arena: referenceArena, baseline: true },
  ...builds.map((b) => ({ name: `wasm ${b.variant}`, ...b, baseline: false })),
];

for (const [M, N, K] of [[1, 4864, 896], [16, 4864, 896], [16, 896, 4864]]) {
  const group = `int4MatmulXWt M=${M} N=${N} K=${K} g${GROUP}`;
  for (const { name, kernels, arena, baseline } of all) {
    const o = operands(kernels, arena, M, N, K);
    Deno.bench(name, { group, baseline }, () => {
      kernels.int4MatmulXWt(o.out, o.x, o.q, o.scales, o.biases, M, N, K, GROUP, 1, 0);
    });
  }
}

for (const [M, N, K] of [[16, 4864, 896], [16, 896, 4864]]) {
  const group = `int4MatmulGW M=${M} N=${N} K=${K} g${GROUP}`;
  for (const { name, kernels, arena, baseline } of all) {
    const o = operands(kernels, arena, M, N, K);
    Deno.bench(name, { group, baseline }, () => {
      kernels.int4MatmulGW(o.out, o.x, o.q, o.scales, o.biases, M, N, K, GROUP, 1, 0);
    });
  }
}

{
  const [N, K] = [896, 896];
  for (const kernel of ["int4Quantize", "int4Dequantize", "int4GatherRows"] as const) {
    const group = `${kernel} N=${N} K=${K} g${GROUP}`;
    for (const { name, kernels, arena, baseline } of all) {
      const o = operands(kernels, arena, 64, N, K);
      Deno.bench(name, { group, baseline }, () => {
        if (kernel === "int4Quantize") {
          kernels.int4Quantize(o.q, o.scales, o.biases, o.w, N, K, GROUP);
        } else if (kernel === "int4Dequantize") {
          kernels.int4Dequantize(o.w, o.q, o.scales, o.biases, N, K, GROUP);
        } else {
          kernels.int4GatherRows(o.out, o.ids, o.q, o.scales, o.biases, 64, K, GROUP);
        }
      });
    }
  }
}
