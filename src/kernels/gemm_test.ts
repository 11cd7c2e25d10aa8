import {
  assertWithinBound,
  checkIdentical,
  copyF32,
  F32_U,
  makeRandom,
  type MatmulBuild,
  matmulBuild,
  randomF32,
} from "./matmul_testing.ts";

type Orientation = "matmulABt" | "matmulAB" | "matmulAtB";

/** Element strides of A(i,k) and B(k,j) for each orientation (as in the ABI docs). */
function strides(o: Orientation, M: number, N: number, K: number) {
  switch (o) {
    case "matmulABt":
      return { a: [K, 1], b: [1, K] };
    case "matmulAB":
      return { a: [K, 1], b: [N, 1] };
    case "matmulAtB":
      return { a: [1, M], b: [N, 1] };
  }
}

/**
 * Runs one case through wasm and the reference on the same inputs and checks the result against
 * the γ_K bound (see assertWithinBound).
 */
function checkCase(
  build: MatmulBuild,
  o: Orientation,
  M: number,
  N: number,
  K: number,
  alpha: number,
  acc: number,
  rand: () => number,
): void {
  const { arena } = build;
  const mark = arena.mark();
  const a = randomF32(arena, rand, M * K);
  const b = randomF32(arena, rand, K * N);
  const outWasm = randomF32(arena, rand, M * N, 3);
  const outRef = copyF32(arena, outWasm, M * N);
  const prior = arena.f32(outWasm, M * N).slice();
  build.wasm[o](outWasm, a, b, M, N, K, alpha, acc);
  build.reference[o](outRef, a, b, M, N, K, alpha, acc);
  const av = arena.f32(a, M * K);
  const bv = arena.f32(b, K * N);
  const s = strides(o, M, N, K);
  const bound = new Float64Array(M * N);
  for (let i = 0; i < M; i++) {
    for (let j = 0; j < N; j++) {
      let sum = 0;
      for (let k = 0; k < K; k++) {
        sum += Math.abs(av[i * s.a[0] + k * s.a[1]] * bv[k * s.b[0] + j * s.b[1]]);
      }
      bound[i * N + j] = Math.abs(alpha) * sum + (acc ? Math.abs(prior[i * N + j]) : 0);
    }
  }
  assertWithinBound(
    arena.f32(outWasm, M * N),
    arena.f32(outRef, M * N),
    bound,
    (K + 4) * F32_U,
    `${build.variant} ${o} M=${M} N=${N} K=${K} alpha=${alpha} acc=${acc}`,
  );
  arena.release(mark);
}

const ORIENTATIONS: Orientation[] = ["matmulABt", "matmulAB", "matmulAtB"];

for (const variant of ["simd", "relaxed"] as const) {
  Deno.test(`gemm ${variant}: every M, N, K in 1..17, every orientation, alpha and acc`, () => {
    const build = matmulBuild(variant);
    const rand = makeRandom(17);
    for (const o of ORIENTATIONS) {
      for (let M = 1; M <= 17; M++) {
        for (let N = 1; N <= 17; N++) {
          for (let K = 1; K <= 17; K++) {
            // Cycle through the four (alpha, acc) modes so each shape class sees all of them.
            const mode = (M + N + K) % 4;
            const alpha = mode < 2 ? 1 : -0.75;
            checkCase(build, o, M, N, K, alpha, mode % 2, rand);
          }
        }
      }
    }
  });

  Deno.test(`gemm ${variant}: larger ragged shapes, several K and N blocks`, () => {
    const build = matmulBuild(variant);
    const rand = makeRandom(29);
    const shapes: [number, number, number][] = [
      [37, 129, 67],
      [6, 8, 512], // exactly one tile, two K blocks
      [13, 1030, 300], // N beyond one packed block (1024 columns), two K blocks
      [64, 24, 777], // four K blocks of a K that is not a multiple of 8
      [1, 33, 900],
      [100, 9, 5],
    ];
    for (const o of ORIENTATIONS) {
      for (const [M, N, K] of shapes) {
        checkCase(build, o, M, N, K, 1, 0, rand);
        checkCase(build, o, M, N, K, 0.5, 1, rand);
      }
    }
  });

  Deno.test(`gemm ${variant}: the in-place LoRA tiles give the bits of the packed ones`, () => {
    // A narrow call (N <= 16, or matmulAtB with M <= 8) reads its operands in place; the same
    // rows / columns inside a wider call go through packed slivers and panels. Where both are
    // whole tiles (the stores are the same), every element must match bit for bit.
    const build = matmulBuild(variant);
    const { arena } = build;
    const rand = makeRandom(41);
    const cases: [Orientation, number, number, number, number, number][] = [
      // [orientation, M, K, narrow, wide, along]: along 1 = N narrows, 0 = M narrows
      ["matmulABt", 256, 896, 8, 24, 1], // h = x·Aᵀ
      ["matmulABt", 40, 300, 16, 40, 1], // two panels, two K blocks
      ["matmulAB", 256, 896, 8, 24, 1], // dh = g·B
      ["matmulAtB", 896, 256, 8, 24, 1], // dB = gᵀ·h
      ["matmulAtB", 0, 520, 8, 14, 0], // dA = dhᵀ·x (N = 64 here), three K blocks
    ];
    for (const [o, M0, K, narrow, wide, along] of cases) {
      for (const [alpha, acc] of [[1, 0], [0.75, 1]]) {
        const mark = arena.mark();
        const M = along ? M0 : wide;
        const N = along ? wide : 64;
        const a = randomF32(arena, rand, M * K);
        const b = randomF32(arena, rand, K * N);
        const out = randomF32(arena, rand, M * N, 3);
        const nM = along ? M : narrow;
        const nN = along ? narrow : N;
        // The narrow operands: the first rows / columns of the wide ones, laid out for nM x nN.
        const s = strides(o, M, N, K);
        const sn = strides(o, nM, nN, K);
        const av = arena.f32(a, M * K).slice();
        const bv = arena.f32(b, K * N).slice();
        const an = arena.allocF32(nM * K);
        const bn = arena.allocF32(K * nN);
        const anv = arena.f32(an, nM * K);
        const bnv = arena.f32(bn, K * nN);
        for (let i = 0; i < nM; i++) {
          for (let k = 0; k < K; k++) anv[i * sn.a[0] + k * sn.a[1]] = av[i * s.a[0] + k * s.a[1]];
        }
        for (let k = 0; k < K; k++) {
          for (let j = 0; j < nN; j++) bnv[k * sn.b[0] + j * sn.b[1]] = bv[k * s.b[0] + j * s.b[1]];
        }
        const outN = arena.allocF32(nM * nN);
        const prior = arena.f32(out, M * N).slice();
        const outNv = arena.f32(outN, nM * nN);
        for (let i = 0; i < nM; i++) {
          for (let j = 0; j < nN; j++) outNv[i * nN + j] = prior[i * N + j];
        }
        build.wasm[o](out, a, b, M, N, K, alpha, acc);
        build.wasm[o](outN, an, bn, nM, nN, K, alpha, acc);
        const wideV = arena.f32(out, M * N);
        const expect = new Float32Array(nM * nN);
        for (let i = 0; i < nM; i++) {
          for (let j = 0; j < nN; j++) expect[i * nN + j] = wideV[i * N + j];
        }
        checkIdentical(
          arena.f32(outN, nM * nN),
          expect,
          `${variant} ${o} ${nM}x${nN}x${K} acc=${acc}`,
        );
        arena.release(mark);
      }
    }
  });

  Deno.test(`gemm ${variant}: K = 0 zeroes out, or leaves it when accumulating`, () => {
    const build = matmulBuild(variant);
    const { arena } = build;
    const out = randomF32(arena, makeRandom(3), 12, 1);
    const before = arena.f32(out, 12).slice();
    build.wasm.matmulAB(out, out, out, 3, 4, 0, 2, 1);
    checkIdentical(arena.f32(out, 12), before, "K = 0, acc = 1");
    build.wasm.matmulABt(out, out, out, 3, 4, 0, 2, 0);
    checkIdentical(arena.f32(out, 12), new Float32Array(12), "K = 0, acc = 0");
  });

  Deno.test(`gemm ${variant}: known small product`, () => {
    // [[1,2],[3,4]] · [[5,6],[7,8]] = [[19,22],[43,50]], checked in every orientation.
    const build = matmulBuild(variant);
    const { arena } = build;
    const put = (v: number[]) => {
      const p = arena.allocF32(v.length);
      arena.f32(p, v.length).set(v);
      return p;
    };
    const a = put([1, 2, 3, 4]);
    const at = put([1, 3, 2, 4]);
    const b = put([5, 6, 7, 8]);
    const bt = put([5, 7, 6, 8]);
    const out = arena.allocF32(4);
    const expect = [19, 22, 43, 50];
    build.wasm.matmulAB(out, a, b, 2, 2, 2, 1, 0);
    checkIdentical(arena.f32(out, 4), expect, "2x2");
    build.wasm.matmulABt(out, a, bt, 2, 2, 2, 1, 0);
    checkIdentical(arena.f32(out, 4), expect, "2x2");
    build.wasm.matmulAtB(out, at, b, 2, 2, 2, 1, 0);
    checkIdentical(arena.f32(out, 4), expect, "2x2");
    build.wasm.matmulAtB(out, at, b, 2, 2, 2, 2, 1);
    checkIdentical(arena.f32(out, 4), expect.map((v) => 3 * v), "2x2");
  });
}
