import {
  assertClose,
  finiteDifferences,
  getF32,
  makeRandom,
  onEveryBuild,
  putF32,
  randomArray,
} from "./_testing.ts";
import { ropeApplyArrays } from "./reference/rope.ts";

function angles(rand: () => number, T: number, half: number) {
  const cos = new Float64Array(T * half);
  const sin = new Float64Array(T * half);
  for (let i = 0; i < T * half; i++) {
    const a = rand() * 4;
    cos[i] = Math.cos(a);
    sin[i] = Math.sin(a);
  }
  return { cos, sin };
}

Deno.test("rope reference rotates each (i, i + hd/2) pair as rotate_half does", () => {
  // hd = 4, one head, one token: pairs (x0, x2) and (x1, x3).
  const x = Float64Array.of(1, 2, 3, 4);
  const a = [0.3, -1.1];
  const cos = Float64Array.from(a, Math.cos);
  const sin = Float64Array.from(a, Math.sin);
  ropeApplyArrays(x, cos, sin, 1, 1, 4, 0);
  // rotate_half(x) = (-x2, -x3, x0, x1); out = x cos + rotate_half(x) sin.
  const expected = [
    1 * cos[0] - 3 * sin[0],
    2 * cos[1] - 4 * sin[1],
    3 * cos[0] + 1 * sin[0],
    4 * cos[1] + 2 * sin[1],
  ];
  assertClose(x, expected, { rtol: 1e-15, atol: 1e-15 }, "rope");
});

Deno.test("rope reference: inverse(forward(x)) == x and inverse is the backward", () => {
  const rand = makeRandom(2);
  const [T, H, hd] = [5, 3, 16];
  const { cos, sin } = angles(rand, T, hd / 2);
  const x0 = randomArray(rand, T * H * hd);
  const x = x0.slice();
  ropeApplyArrays(x, cos, sin, T, H, hd, 0);
  ropeApplyArrays(x, cos, sin, T, H, hd, 1);
  assertClose(x, x0, { atol: 1e-14 }, "round trip");

  const r = randomArray(rand, T * H * hd);
  const loss = () => {
    const y = x0.slice();
    ropeApplyArrays(y, cos, sin, T, H, hd, 0);
    let s = 0;
    for (let i = 0; i < y.length; i++) s += y[i] * r[i];
    return s;
  };
  const g = r.slice();
  ropeApplyArrays(g, cos, sin, T, H, hd, 1);
  assertClose(g, finiteDifferences(loss, x0), { rtol: 1e-6, atol: 1e-8 }, "backward");
});

Deno.test("wasm ropeApply matches the reference, forward and inverse (both variants)", () => {
  for (const [T, H, hd] of [[1, 1, 8], [3, 2, 16], [17, 4, 64], [5, 3, 12]]) {
    const rand = makeRandom(30 + T);
    const half = hd / 2;
    const { cos, sin } = angles(rand, T, half);
    const x = randomArray(rand, T * H * hd);
    const [ref, ...wasm] = onEveryBuild(({ kernels, arena }) => {
      const pc = putF32(arena, cos), ps = putF32(arena, sin), px = putF32(arena, x);
      kernels.ropeApply(px, pc, ps, T, H, hd, 0);
      const fwd = getF32(arena, px, T * H * hd);
      kernels.ropeApply(px, pc, ps, T, H, hd, 1);
      return { fwd, back: getF32(arena, px, T * H * hd) };
    });
    for (const { build, out } of wasm) {
      // x1 c - x2 s in f32 (maybe fused) vs f64 then rounded: a few ulp of |x| <= 1.
      const tag = `${build} T=${T} H=${H} hd=${hd}`;
      assertClose(out.fwd, ref.out.fwd, { atol: 3e-7 }, `forward ${tag}`);
      assertClose(out.back, ref.out.back, { atol: 6e-7 }, `inverse ${tag}`);
      assertClose(out.back, Float32Array.from(x), { atol: 6e-7 }, `round trip ${tag}`);
    }
  }
});
