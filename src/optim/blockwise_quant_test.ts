import assert from "node:assert/strict";
import { Rng } from "../runtime/rng.ts";
import {
  decodeBlock,
  encodeBlock,
  QUANT_BLOCK,
  quantBlocks,
  SIGNED_LEVELS,
  UNSIGNED_LEVELS,
} from "./blockwise_quant.ts";

/** Values over many orders of magnitude, with zeros, both signs and one exact power of two. */
function sample(seed: number, len: number, signed: boolean): Float64Array {
  const rng = new Rng(seed);
  const x = new Float64Array(len);
  for (let i = 0; i < len; i++) {
    const mag = 10 ** (-12 * rng.uniform()) * (1 + rng.uniform());
    x[i] = i % 17 === 0 ? 0 : signed && rng.uniform() < 0.5 ? -mag : mag;
  }
  x[len >> 1] = signed ? -2 : 2;
  return x;
}

/** Half the gap between the two levels around y (scaled): the nearest-level rounding bound. */
function halfGap(levels: Float64Array, y: number): number {
  let k = 0;
  while (k + 1 < levels.length - 1 && levels[k + 1] <= y) k++;
  return (levels[k + 1] - levels[k]) / 2;
}

Deno.test("blockwise quant: the levels: 1/64 (1/128) steps at the top, <= 10 % apart below, their range", () => {
  for (
    const [levels, top, count, smallest] of [
      [SIGNED_LEVELS, 64, 127, 1.6e-4],
      [UNSIGNED_LEVELS, 128, 255, 1.8e-7],
    ] as const
  ) {
    assert.equal(levels.length, count + 1);
    assert.equal(levels[0], 0);
    assert.equal(levels[count], 1);
    assert.equal(levels[count - 1], 1 - 1 / top);
    for (let k = 2; k <= count; k++) {
      const r = levels[k] / levels[k - 1];
      assert(r > 1 && r <= 1.1 + 1e-12, `ratio at ${k}: ${r}`);
    }
    assert(levels[1] > smallest && levels[1] < 1.2 * smallest, `smallest level ${levels[1]}`);
  }
});

Deno.test("blockwise quant: signed round trip within half a level gap; zeros and signs kept", () => {
  for (const len of [QUANT_BLOCK, 37, 1]) {
    const x = sample(len, len, true);
    const codes = new Uint8Array(len);
    const scale = encodeBlock(x, 0, len, codes, 0, "signed");
    const back = new Float64Array(len);
    decodeBlock(codes, 0, len, scale, back, 0, "signed");
    let absmax = 0;
    for (const v of x) absmax = Math.max(absmax, Math.abs(v));
    assert.equal(scale, Math.fround(scale), "scale is an f32");
    assert(scale >= absmax && scale <= absmax * (1 + 2 ** -23), `scale ${scale} vs ${absmax}`);
    for (let i = 0; i < len; i++) {
      const y = Math.abs(x[i]) / scale;
      const bound = scale * halfGap(SIGNED_LEVELS, y) * (1 + 1e-12);
      assert(Math.abs(back[i] - x[i]) <= bound, `[${i}] ${x[i]} -> ${back[i]} (bound ${bound})`);
      assert(back[i] === 0 || Math.sign(back[i]) === Math.sign(x[i]), `sign of [${i}]`);
      if (y >= SIGNED_LEVELS[1]) {
        assert(Math.abs(back[i] - x[i]) <= 0.05 * Math.abs(x[i]), `relative error at [${i}]`);
      }
      if (x[i] === 0) assert.equal(back[i], 0);
    }
  }
});

Deno.test("blockwise quant: unsigned round trip within half a level gap; positives stay positive", () => {
  for (const len of [QUANT_BLOCK, 100]) {
    const x = sample(len + 5, len, false);
    const codes = new Uint8Array(len);
    const scale = encodeBlock(x, 0, len, codes, 0, "unsigned");
    const back = new Float64Array(len);
    decodeBlock(codes, 0, len, scale, back, 0, "unsigned");
    for (let i = 0; i < len; i++) {
      if (x[i] === 0) {
        assert.equal(back[i], 0);
        continue;
      }
      assert(back[i] > 0, `[${i}] ${x[i]} decoded to 0`);
      const y = x[i] / scale;
      if (codes[i] === 1 && y < UNSIGNED_LEVELS[1]) continue; // rounded up to the first level
      const bound = scale * halfGap(UNSIGNED_LEVELS, y) * (1 + 1e-12);
      assert(Math.abs(back[i] - x[i]) <= bound, `[${i}] ${x[i]} -> ${back[i]} (bound ${bound})`);
    }
  }
});

Deno.test("blockwise quant: offsets, a block of zeros and the block count", () => {
  const codes = new Uint8Array(10).fill(9);
  assert.equal(encodeBlock(new Float64Array(4), 0, 4, codes, 3, "signed"), 0);
  assert.deepEqual([...codes], [9, 9, 9, 0, 0, 0, 0, 9, 9, 9]);
  const x = new Float32Array([7, 1, -0.25, 7]);
  const s = encodeBlock(x, 1, 2, codes, 5, "signed");
  assert.equal(s, 1);
  const out = new Float32Array(4);
  decodeBlock(codes, 5, 2, s, out, 1, "signed");
  assert.deepEqual([out[0], out[1], out[3]], [0, 1, 0]);
  assert(Math.abs(out[2] + 0.25) <= 0.5 / 64, `${out[2]}`);
  assert.equal(quantBlocks(1), 1);
  assert.equal(quantBlocks(QUANT_BLOCK), 1);
  assert.equal(quantBlocks(QUANT_BLOCK + 1), 2);
});
