import {
  assertClose,
  getF32,
  makeRandom,
  maxAbs,
  onEveryBuild,
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

Deno.test("wasm sgdStep/adamwStep match the reference over several steps (ragged n, both variants)", () => {
  for (const n of [1, 3, 17, 1003]) {
    const rand = makeRandom(70 + n);
    const p0 = randomArray(rand, n);
    const grads = [0, 1, 2, 3].map(() => randomArray(rand, n, 0.1));
    const [lr, b1, b2, eps, wd] = [1e-3, 0.9, 0.999, 1e-8, 0.1];
    const [ref, ...wasm] = onEveryBuild(({ kernels, arena }) => {
      const ps = putF32(arena, p0);
      for (const g of grads) kernels.sgdStep(ps, putF32(arena, g), n, 0.05, wd);
      const pa = putF32(arena, p0), pm = arena.allocZeroed(n * 4), pv = arena.allocZeroed(n * 4);
      grads.forEach((g, i) => {
        const t = i + 1;
        kernels.adamwStep(
          pa,
          putF32(arena, g),
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
      return {
        sgd: getF32(arena, ps, n),
        p: getF32(arena, pa, n),
        m: getF32(arena, pm, n),
        v: getF32(arena, pv, n),
      };
    });
    for (const { build, out } of wasm) {
      // wasm runs in f32 (hyper-parameters rounded to f32), the reference in f64 with f32 storage:
      // each step differs by a few f32 ulp of p (~1e-7 relative); the AdamW update itself is
      // lr-sized, so its f32 error is far smaller than p's ulp.
      const tag = `${build} n=${n}`;
      assertClose(out.sgd, ref.out.sgd, { rtol: 5e-7, atol: 1e-7 }, `sgd ${tag}`);
      assertClose(out.p, ref.out.p, { rtol: 5e-7, atol: 1e-7 }, `adamw p ${tag}`);
      assertClose(
        out.m,
        ref.out.m,
        { rtol: 1e-6, atol: 1e-6 * maxAbs(ref.out.m) },
        `adamw m ${tag}`,
      );
      assertClose(
        out.v,
        ref.out.v,
        { rtol: 1e-6, atol: 1e-6 * maxAbs(ref.out.v) },
        `adamw v ${tag}`,
      );
    }
  }
});
