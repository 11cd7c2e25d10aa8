/**
 * The fused-epilogue kernels give exactly the bits of the unfused kernels they replace
 * (`matmulABtBias` = matmulABt then addBias, `int4MatmulXWtBias` = int4MatmulXWt then addBias,
 * `matmulABtResidual` = matmulABt then add, into out or into the residual),
 * on both wasm builds and the reference, over ragged shapes: rows that end in a 1..5-row sliver
 * (the scratch-tile path), columns that end in a partial panel, several K blocks (K > 256, the bias
 * belongs to the last only), the GEMV path (M <= 8) and the LoRA-sized in-place tiles (N <= 16).
 */
import type { Kernels } from "./abi.ts";
import type { Ptr } from "../runtime/ptr.ts";
import { checkIdentical, makeRandom, randomF32 } from "./matmul_testing.ts";
import { createReferenceKernels } from "./reference/mod.ts";
import { loadKernelsSync } from "./wasm.ts";
import type { Arena } from "../runtime/arena.ts";

type Fused = Pick<
  Kernels,
  | "matmulABt"
  | "matmulABtBias"
  | "matmulABtResidual"
  | "int4MatmulXWt"
  | "int4MatmulXWtBias"
  | "addBias"
  | "add"
  | "int4Quantize"
>;

const F32_SHAPES: [number, number, number][] = [
  [1, 1, 1],
  [3, 5, 7],
  [7, 9, 16],
  [8, 8, 896],
  [13, 16, 33],
  [37, 129, 67],
  [64, 24, 777],
  [257, 8, 300],
  [29, 1030, 40],
];

/** [M, N, K, groupSize]: GEMV rows (M <= 8), the tiled path, ragged N, K over one block. */
const INT4_SHAPES: [number, number, number, number][] = [
  [1, 70, 128, 64],
  [3, 7, 96, 32],
  [8, 9, 64, 64],
  [9, 13, 64, 64],
  [37, 129, 640, 64],
  [20, 1030, 128, 32],
];

/** Runs `fused` and `unfused` on copies of the same output buffer and checks every bit. */
function compare(
  arena: Arena,
  n: number,
  rand: () => number,
  fused: (out: Ptr) => void,
  unfused: (out: Ptr) => void,
  what: string,
): void {
  const a = randomF32(arena, rand, n, 5);
  const b = arena.allocF32(n);
  arena.f32(b, n).set(arena.f32(a, n));
  fused(a);
  unfused(b);
  checkIdentical(arena.f32(a, n), arena.f32(b, n), what);
}

function checkBuild(k: Fused, arena: Arena, name: string): void {
  const rand = makeRandom(29);
  for (const [M, N, K] of F32_SHAPES) {
    const mark = arena.mark();
    const x = randomF32(arena, rand, M * K);
    const w = randomF32(arena, rand, N * K);
    const bias = randomF32(arena, rand, N);
    compare(arena, M * N, rand, (out) => k.matmulABtBias(out, x, w, bias, M, N, K), (out) => {
      k.matmulABt(out, x, w, M, N, K, 1, 0);
      k.addBias(out, bias, M, N);
    }, `${name} matmulABtBias M=${M} N=${N} K=${K}`);
    arena.release(mark);
  }
  for (const [M, N, K] of F32_SHAPES) {
    for (const [alpha, acc, into] of [[1, 0, 0], [2, 1, 0], [0.75, 1, 1], [1, 0, 1]]) {
      const mark = arena.mark();
      const x = randomF32(arena, rand, M * K);
      const w = randomF32(arena, rand, N * K);
      const res = randomF32(arena, rand, M * N);
      const res2 = arena.allocF32(M * N);
      arena.f32(res2, M * N).set(arena.f32(res, M * N));
      const what = `${name} matmulABtResidual M=${M} N=${N} K=${K} acc=${acc} into=${into}`;
      compare(
        arena,
        M * N,
        rand,
        (out) => k.matmulABtResidual(out, res, x, w, M, N, K, alpha, acc, into),
        (out) => {
          k.matmulABt(out, x, w, M, N, K, alpha, acc);
          if (into) k.add(res2, res2, out, M * N);
          else k.add(out, out, res2, M * N);
        },
        what,
      );
      checkIdentical(arena.f32(res, M * N), arena.f32(res2, M * N), `${what}: the residual`);
      arena.release(mark);
    }
  }
  for (const [M, N, K, g] of INT4_SHAPES) {
    const mark = arena.mark();
    const wf = randomF32(arena, rand, N * K);
    const q = arena.alloc(N * K / 2);
    const scales = arena.allocF32(N * K / g);
    const biases = arena.allocF32(N * K / g);
    k.int4Quantize(q, scales, biases, wf, N, K, g);
    const x = randomF32(arena, rand, M * K);
    const bias = randomF32(arena, rand, N);
    compare(
      arena,
      M * N,
      rand,
      (out) => k.int4MatmulXWtBias(out, x, q, scales, biases, bias, M, N, K, g),
      (out) => {
        k.int4MatmulXWt(out, x, q, scales, biases, M, N, K, g, 1, 0);
        k.addBias(out, bias, M, N);
      },
      `${name} int4MatmulXWtBias M=${M} N=${N} K=${K} g${g}`,
    );
    arena.release(mark);
  }
}

for (const variant of ["simd", "relaxed"] as const) {
  Deno.test(`fused bias epilogue (${variant}): the bits of the product then addBias`, () => {
    const { kernels, arena } = loadKernelsSync({ variant });
    checkBuild(kernels, arena, variant);
  });
}

Deno.test("fused bias epilogue (reference): the bits of the product then addBias", () => {
  const loaded = loadKernelsSync({ variant: "simd" });
  checkBuild(createReferenceKernels(loaded.memory), loaded.arena, "reference");
});
