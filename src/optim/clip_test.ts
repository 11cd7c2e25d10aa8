import assert from "node:assert/strict";
import { Rng } from "../runtime/rng.ts";
import { buildCases } from "./_builds.ts";
import type { ParamTensor } from "../runtime/ptr.ts";
import { clipGradNorm, globalGradNorm, scaleGrads } from "./clip.ts";

for (const build of buildCases()) {
  Deno.test({
    name: `clip[${build.name}]: global norm, scaling and clipping match a direct computation`,
    ignore: !build.available,
    fn() {
      const { kernels, arena } = build.make();
      const rng = new Rng(5);
      const grads: Float32Array[] = [];
      const params: ParamTensor[] = [3, 100, 17].map((n, i) => {
        const g = new Float32Array(n);
        rng.fillNormal(g, 0.3);
        grads.push(g);
        const p = { name: `p${i}`, ptr: arena.allocF32(n), grad: arena.allocF32(n), n };
        arena.f32(p.grad, n).set(g);
        return p;
      });
      let sum = 0;
      for (const g of grads) for (const x of g) sum += x * x;
      const norm = Math.sqrt(sum);
      // sumSquares accumulates in f64 (ABI), so only the order of additions differs.
      assert(Math.abs(globalGradNorm(kernels, params) - norm) <= 1e-12 * norm);

      scaleGrads(kernels, params, 0.5);
      params.forEach((p, i) =>
        assert.deepEqual(arena.f32(p.grad, p.n), grads[i].map((x) => x * 0.5))
      );
      const halfNorm = norm / 2;

      // Under the threshold: untouched, and the norm is returned.
      const before = params.map((p) => arena.f32(p.grad, p.n).slice());
      const returned = clipGradNorm(kernels, params, halfNorm * 2);
      assert(Math.abs(returned - halfNorm) <= 1e-12 * halfNorm);
      params.forEach((p, i) => assert.deepEqual(arena.f32(p.grad, p.n), before[i]));

      // Over it: scaled to maxNorm (PyTorch's coefficient maxNorm / (norm + 1e-6)).
      const maxNorm = halfNorm / 4;
      clipGradNorm(kernels, params, maxNorm);
      const after = globalGradNorm(kernels, params);
      assert(Math.abs(after - maxNorm) <= 1e-6 * maxNorm + 1e-6, `${after} vs ${maxNorm}`);
      const coef = Math.fround(maxNorm / (halfNorm + 1e-6));
      params.forEach((p, i) => {
        const got = arena.f32(p.grad, p.n);
        for (let j = 0; j < p.n; j++) assert.equal(got[j], Math.fround(before[i][j] * coef));
      });
      assert.throws(() => clipGradNorm(kernels, params, 0), RangeError);
    },
  });
}
