import assert from "node:assert/strict";
import { Rng } from "../runtime/rng.ts";
import { stashBf16, unstashBf16 } from "./bf16_stash.ts";

Deno.test("bf16 stash: round trip within 2^-8 relative, ties to even, specials kept", () => {
  const x = new Float32Array(4096);
  new Rng(5).fillNormal(x, 1);
  for (let i = 0; i < x.length; i += 7) x[i] *= 1e-30;
  const stash = new Uint16Array(x.length + 3);
  stashBf16(x, stash, 3);
  const back = new Float32Array(x.length);
  unstashBf16(stash, 3, back);
  for (let i = 0; i < x.length; i++) {
    assert(Math.abs(back[i] - x[i]) <= 2 ** -8 * Math.abs(x[i]), `[${i}] ${x[i]} -> ${back[i]}`);
  }
  // 1 + 2^-8 is a tie between 1 and 1 + 2^-7: to even (1); 1 + 3·2^-8 rounds up to 1 + 2^-6.
  const s = new Float32Array([1 + 2 ** -8, 1 + 3 * 2 ** -8, Infinity, -0, NaN, 3.4e38]);
  const st = new Uint16Array(s.length);
  stashBf16(s, st, 0);
  const b = new Float32Array(s.length);
  unstashBf16(st, 0, b);
  assert.deepEqual([...b.subarray(0, 4)], [1, 1 + 2 ** -6, Infinity, -0]);
  assert(Number.isNaN(b[4]));
  assert.equal(b[5], Infinity); // above bf16's largest finite value after rounding
});
