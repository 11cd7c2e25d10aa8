/**
 * f32 GEMM: the wasm builds against the plain-TS reference, one group per shape and orientation.
 *
 *   deno bench -A bench/gemm_bench.ts
 *
 * Shapes are kept small enough for the reference to finish; bench/kernels.ts times the large ones.
 */
import { createReferenceKernels } from "../src/kernels/reference/mod.ts";
import { Arena } from "../src/runtime/arena.ts";
import type { Kernels } from "../src/kernels/abi.ts";
import { benchBuild } from "./kernels.ts";

type Orientation = "matmulABt" | "matmulAB" | "matmulAtB";

const SHAPES: [number, number, number][] = [
  [256, 256, 256],
  [256, 8, 896], // LoRA h = x·Aᵀ
  [8, 896, 256], // LoRA dA = dhᵀ·x (as AtB)
];

function inputs(arena: Arena, M: number, N: number, K: number) {
  const a = arena.allocF32(M * K);
  const b = arena.allocF32(K * N);
  const out = arena.allocF32(M * N);
  arena.f32(a, M * K).forEach((_, i, v) => (v[i] = Math.sin(i)));
  arena.f32(b, K * N).forEach((_, i, v) => (v[i] = Math.cos(i)));
  return { a, b, out };
}

const referenceMemory = new WebAssembly.Memory({ initial: 1 });
const reference: Kernels = createReferenceKernels(referenceMemory);
const referenceArena = new Arena(referenceMemory, reference.heapBase());
const builds = [benchBuild("simd"), benchBuild("relaxed")];

for (const o of ["matmulABt", "matmulAB", "matmulAtB"] as Orientation[]) {
  for (const [M, N, K] of SHAPES) {
    const group = `${o} M=${M} N=${N} K=${K}`;
    const r = inputs(referenceArena, M, N, K);
    Deno.bench(`reference (plain TS, f64 sums)`, { group, baseline: true }, () => {
      reference[o](r.out, r.a, r.b, M, N, K, 1, 0);
    });
    for (const build of builds) {
      const w = inputs(build.arena, M, N, K);
      Deno.bench(`wasm ${build.variant}`, { group }, () => {
        build.kernels[o](w.out, w.a, w.b, M, N, K, 1, 0);
      });
    }
  }
}
