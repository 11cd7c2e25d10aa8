import {
  assertClose,
  getF32,
  makeRandom,
  onEveryBuild,
  putF32,
  randomArray,
  referenceBuild,
  wasmExports,
} from "./_testing.ts";

const f32 = (a: ArrayLike<number>) => Float32Array.from(a);

Deno.test("elementwise reference kernels", () => {
  const rand = makeRandom(9);
  const { kernels, arena } = referenceBuild();
  const n = 13;
  const a = f32(randomArray(rand, n));
  const b = f32(randomArray(rand, n));
  const pa = putF32(arena, a), pb = putF32(arena, b), po = arena.allocF32(n);
  kernels.add(po, pa, pb, n);
  assertClose(getF32(arena, po, n), f32(Array.from(a, (x, i) => x + b[i])), { rtol: 0 }, "add");
  kernels.axpy(pa, pb, 0.25, n);
  assertClose(
    getF32(arena, pa, n),
    f32(Array.from(a, (x, i) => x + 0.25 * b[i])),
    { rtol: 0 },
    "axpy",
  );
  kernels.scale(pb, -3, n);
  assertClose(getF32(arena, pb, n), f32(Array.from(b, (x) => -3 * x)), { rtol: 0 }, "scale");
  const [T, N] = [3, 5];
  const m = f32(randomArray(rand, T * N)), bias = f32(randomArray(rand, N));
  const pm = putF32(arena, m);
  kernels.addBias(pm, putF32(arena, bias), T, N);
  assertClose(
    getF32(arena, pm, T * N),
    f32(Array.from(m, (x, i) => x + bias[i % N])),
    { rtol: 0 },
    "addBias",
  );
  const s = kernels.sumSquares(putF32(arena, a), n);
  assertClose(
    [s],
    [Array.from(a).reduce((acc, x) => acc + x * x, 0)],
    { rtol: 1e-15 },
    "sumSquares",
  );
});

Deno.test("wasm exp: relative error <= 2e-7 over [-87.3, 88.7], limits and special values", () => {
  const rand = makeRandom(11);
  for (const variant of ["simd", "relaxed"] as const) {
    const { exports, arena } = wasmExports(variant);
    const n = 1 << 16;
    const x = arena.allocF32(n), out = arena.allocF32(n);
    for (const [lo, hi] of [[-87.3, 88.7], [-1, 1], [-0.36, 0.36], [-20, 5]]) {
      const xv = arena.f32(x, n);
      for (let i = 0; i < n; i++) xv[i] = (lo + hi) / 2 + rand() * (hi - lo) / 2;
      xv[n - 1] = 0; // not a multiple of 4 when n - 1 elements are used below: scalar tail
      exports.expArray(out, x, n - 1);
      const want = Array.from(arena.f32(x, n - 1), Math.exp);
      // f32 rounding alone is up to 6e-8 relative; the polynomial adds about as much again.
      assertClose(arena.f32(out, n - 1), want, { rtol: 2e-7 }, `${variant} exp on [${lo}, ${hi}]`);
    }
    const special = [-Infinity, -1e30, -200, -104, -88, 0, 1, 88.7, 89, 1e30, Infinity, NaN];
    const sp = putF32(arena, special);
    const so = arena.allocF32(special.length);
    exports.expArray(so, sp, special.length);
    const got = getF32(arena, so, special.length);
    // exp(-88) is subnormal in f32: absolute error within one subnormal step (2^-149).
    assertClose(got, special.map((v) => Math.fround(Math.exp(Math.fround(v)))), {
      rtol: 2e-7,
      atol: 2 ** -149,
    }, `${variant} exp special values`);
    if (got[0] !== 0 || got[5] !== 1 || got[10] !== Infinity || !Number.isNaN(got[11])) {
      throw new Error(
        `${variant}: exp(-Inf), exp(0), exp(Inf), exp(NaN) = ${got[0]} ${got[5]} ${got[10]} ${
          got[11]
        }`,
      );
    }
  }
});

/**
 * The simd build's exp as a scalar model, one f32 rounding per wasm operation: clamp to
 * [-104, 89], n = round(x log2 e) ties to even, r = x - n ln2 in two parts, the Cephes
 * polynomial, then y 2^n1 2^n2 with n1 = floor(n / 2). A rewrite of the kernel that changes any
 * rounding (a fused multiply-add, another rounding of n, a single 2^n scaling) shows here.
 */
function expSimdModel(x0: number): number {
  const f = Math.fround;
  if (Number.isNaN(x0)) return NaN;
  const x = Math.min(Math.max(x0, -104), 89);
  const y0 = f(x * f(1.44269504088896341));
  const fl = Math.floor(y0);
  const n = y0 - fl === 0.5 ? (fl % 2 === 0 ? fl : fl + 1) : Math.round(y0);
  let r = f(x - f(n * f(0.693359375)));
  r = f(r - f(n * f(-2.12194440e-4)));
  const P = [1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1];
  let p = f(f(f(P[0]) * r) + f(P[1]));
  for (const c of [...P.slice(2), 5.0000001201e-1]) p = f(f(p * r) + f(c));
  const y = f(f(f(p * f(r * r)) + r) + 1);
  const n1 = Math.floor(n / 2);
  return f(f(y * 2 ** n1) * 2 ** (n - n1));
}

Deno.test("wasm exp (simd build): bit-identical to its scalar model on random bit patterns", () => {
  const { exports, arena } = wasmExports("simd");
  const n = 1 << 16;
  const x = arena.allocF32(n), out = arena.allocF32(n);
  const bits = new Uint32Array(arena.memory.buffer, x, n);
  const rand = makeRandom(31);
  // Every f32 bit pattern is equally likely: NaNs, infinities, subnormals and all exponents.
  for (let i = 0; i < n; i++) bits[i] = Math.floor(rand() * 2 ** 32) >>> 0;
  // Half of them in the range where exp is finite and not zero, where the arithmetic matters.
  const xv = arena.f32(x, n);
  for (let i = 0; i < n; i += 2) xv[i] = (rand() - 0.5) * 210;
  xv.set([-Infinity, Infinity, -104, 89, 88.72, 88.73, -87.33, -103.97, 0.5 / Math.LOG2E], 0);
  exports.expArray(out, x, n);
  const got = arena.f32(out, n);
  for (let i = 0; i < n; i++) {
    const want = expSimdModel(xv[i]);
    if (Object.is(got[i], want) || (Number.isNaN(got[i]) && Number.isNaN(want))) continue;
    throw new Error(`exp(${xv[i]}) = ${got[i]}, the model says ${want}`);
  }
});

Deno.test("wasm elementwise kernels match the reference (ragged n, both variants)", () => {
  for (const n of [1, 3, 13, 64, 1003]) {
    const rand = makeRandom(12 + n);
    const a = randomArray(rand, n), b = randomArray(rand, n);
    const [T, N] = [3, n];
    const bias = randomArray(rand, N), m = randomArray(rand, T * N);
    const results = onEveryBuild(({ kernels, arena }) => {
      const pa = putF32(arena, a), pb = putF32(arena, b), po = arena.allocF32(n);
      kernels.add(po, pa, pb, n);
      const added = getF32(arena, po, n);
      kernels.add(pa, pa, pb, n); // aliasing out = a
      const aliased = getF32(arena, pa, n);
      const py = putF32(arena, a);
      kernels.axpy(py, pb, -0.37, n);
      const ps = putF32(arena, a);
      kernels.scale(ps, 1.7, n);
      const pm = putF32(arena, m);
      kernels.addBias(pm, putF32(arena, bias), T, N);
      return [
        Array.from(added),
        Array.from(aliased),
        Array.from(getF32(arena, py, n)),
        Array.from(getF32(arena, ps, n)),
        Array.from(getF32(arena, pm, T * N)),
        [kernels.sumSquares(putF32(arena, m), T * N)],
      ];
    });
    const [ref, ...wasm] = results;
    const names = ["add", "add aliased", "axpy", "scale", "addBias", "sumSquares"];
    // add/scale/addBias: the same single f32 operation, bit-identical. axpy: the relaxed build
    // may fuse the multiply-add (one rounding instead of two): within 1 ulp of |y|+|alpha x|.
    // sumSquares: f64 sums in a different order, relative 1e-13.
    const tols = [{ rtol: 0 }, { rtol: 0 }, { rtol: 1.2e-7, atol: 1.2e-7 }, { rtol: 0 }, {
      rtol: 0,
    }, {
      rtol: 1e-13,
    }];
    for (const w of wasm) {
      names.forEach((name, i) =>
        assertClose(w.out[i], ref.out[i], tols[i], `${w.build} ${name} n=${n}`)
      );
    }
  }
});
