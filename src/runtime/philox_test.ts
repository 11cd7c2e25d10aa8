import assert from "node:assert/strict";
import { fillNormalStream, mulHi32, philox4x32 } from "./philox.ts";
import { Rng } from "./rng.ts";

Deno.test("philox4x32-10: Random123 known-answer vectors", () => {
  const out = new Uint32Array(4);
  const cases: [number[], number[], number[]][] = [
    [[0, 0, 0, 0], [0, 0], [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]],
    [
      [0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff],
      [0xffffffff, 0xffffffff],
      [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd],
    ],
    [
      [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344],
      [0xa4093822, 0x299f31d0],
      [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1],
    ],
  ];
  for (const [c, k, want] of cases) {
    philox4x32(out, c[0], c[1], c[2], c[3], k[0], k[1]);
    assert.deepEqual(Array.from(out), want);
  }
});

Deno.test("fillNormalStream: independent of chunking, N(0,1), distinct per seed and stream", () => {
  const n = 40_000;
  const whole = new Float32Array(n + 3);
  fillNormalStream(whole, 7, 2, 0);
  const pieces = new Float32Array(n + 3);
  for (let off = 0; off < pieces.length; off += 1000) {
    fillNormalStream(pieces.subarray(off, Math.min(off + 1000, pieces.length)), 7, 2, off);
  }
  assert.deepEqual(pieces, whole);
  let s = 0, q = 0;
  for (let i = 0; i < n; i++) {
    s += whole[i];
    q += whole[i] ** 2;
  }
  // 5 standard errors: se(mean) = 1/sqrt(n), se(mean of squares) = sqrt(2/n).
  assert(Math.abs(s / n) < 5 / Math.sqrt(n), `mean ${s / n}`);
  assert(Math.abs(q / n - 1) < 5 * Math.sqrt(2 / n), `var ${q / n}`);
  // Other seeds / streams (incl. seeds differing only above bit 32) are uncorrelated with it.
  for (const [seed, stream] of [[8, 2], [7, 3], [7 + 2 ** 32, 2]]) {
    const other = new Float32Array(n);
    fillNormalStream(other, seed, stream, 0);
    let dot = 0;
    for (let i = 0; i < n; i++) dot += whole[i] * other[i];
    // For independent N(0,1) streams, dot/n has standard error 1/sqrt(n).
    assert(Math.abs(dot / n) < 5 / Math.sqrt(n), `seed ${seed} stream ${stream}: ${dot / n}`);
  }
  assert.throws(() => fillNormalStream(whole, 1, 0, 3), RangeError);
});

Deno.test("mulHi32 equals the exact high word (BigInt) on edge and random operands", () => {
  const rng = new Rng(9);
  const pairs: [number, number][] = [
    [0, 0],
    [0xffffffff, 0xffffffff],
    [1, 0xffffffff],
    [
      0x80000000,
      0x80000000,
    ],
    [0xd2511f53, 0xffffffff],
    [0xcd9e8d57, 0x12345678],
  ];
  for (let i = 0; i < 20_000; i++) pairs.push([rng.nextU32(), rng.nextU32()]);
  for (const [a, b] of pairs) {
    const exact = Number((BigInt(a) * BigInt(b)) >> 32n);
    assert.equal(mulHi32(a, b), exact, `${a} * ${b}`);
  }
});
