import {
  assertClose,
  getF32,
  makeRandom,
  putF32,
  randomArray,
  referenceBuild,
} from "./_testing.ts";

/** AdamW written out in f64, straight from the paper's update with decoupled decay. */
function adamwF64(
  p: Float64Array,
  grads: Float64Array[],
  lr: number,
  b1: number,
  b2: number,
  eps: number,
  wd: number,
) {
  const m = new Float64Array(p.length);
  const v = new Float64Array(p.length);
  grads.forEach((g, step) => {
    const t = step + 1;
    for (let i = 0; i < p.length; i++) {
      m[i] = b1 * m[i] + (1 - b1) * g[i];
      v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
      const mHat = m[i] / (1 - b1 ** t);
      const vHat = v[i] / (1 - b2 ** t);
      p[i] = p[i] - lr * wd * p[i] - lr * mHat / (Math.sqrt(vHat) + eps);
    }
  });
  return { p, m, v };
}

Deno.test("optimizer reference: sgdStep and three adamwSteps vs f64 loops", () => {
  const rand = makeRandom(10);
  const { kernels, arena } = referenceBuild();
  const n = 21;
  const p0 = Float64Array.from(randomArray(rand, n), Math.fround);
  const g = Float64Array.from(randomArray(rand, n, 0.1), Math.fround);
  const pp = putF32(arena, p0), pg = putF32(arena, g);
  kernels.sgdStep(pp, pg, n, 1e-2, 0.1);
  assertClose(
    getF32(arena, pp, n),
    p0.map((p, i) => p - 1e-2 * (g[i] + 0.1 * p)),
    { rtol: 1e-7 },
    "sgd",
  );

  const [lr, b1, b2, eps, wd] = [1e-2, 0.9, 0.999, 1e-8, 0.01];
  const grads = [0, 1, 2].map(() => Float64Array.from(randomArray(rand, n, 0.1), Math.fround));
  grads[1][0] = 0; // a zero gradient still moves the parameter through momentum and decay
  const pa = putF32(arena, p0),
    pm = putF32(arena, new Float64Array(n)),
    pv = putF32(arena, new Float64Array(n));
  grads.forEach((gr, step) => {
    const t = step + 1;
    kernels.adamwStep(
      pa,
      putF32(arena, gr),
      pm,
      pv,
      n,
      lr,
      b1,
      b2,
      eps,
      wd,
      1 - b1 ** t,
      1 - b2 ** t,
    );
  });
  const want = adamwF64(p0.slice(), grads, lr, b1, b2, eps, wd);
  // f32 storage of p, m, v between steps: relative error a few ulp of f32.
  assertClose(getF32(arena, pa, n), want.p, { rtol: 1e-6, atol: 1e-7 }, "adamw p");
  assertClose(getF32(arena, pm, n), want.m, { rtol: 1e-6, atol: 1e-9 }, "adamw m");
  assertClose(getF32(arena, pv, n), want.v, { rtol: 1e-6, atol: 1e-12 }, "adamw v");
});
