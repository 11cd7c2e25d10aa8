import {
  assertClose,
  getF32,
  makeRandom,
  putF32,
  randomArray,
  referenceBuild,
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
