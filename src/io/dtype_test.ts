import assert from "node:assert/strict";
import {
  decodeToF32,
  DTYPE_BYTES,
  encodeFromF32,
  f16BitsToF32,
  f32ToBf16Bits,
  f32ToF16Bits,
  isDtype,
} from "./dtype.ts";

Deno.test("dtype sizes and membership", () => {
  assert.equal(DTYPE_BYTES.BF16, 2);
  assert.equal(DTYPE_BYTES.F64, 8);
  assert.equal(DTYPE_BYTES.BOOL, 1);
  assert.ok(isDtype("U32"));
  assert.ok(!isDtype("F128"));
  assert.ok(!isDtype("toString"));
});

Deno.test("f16 decode of known bit patterns", () => {
  assert.equal(f16BitsToF32(0x3c00), 1);
  assert.equal(f16BitsToF32(0xc000), -2);
  assert.equal(f16BitsToF32(0x7bff), 65504);
  assert.equal(f16BitsToF32(0x0001), 2 ** -24);
  assert.equal(f16BitsToF32(0x7c00), Infinity);
  assert.ok(Number.isNaN(f16BitsToF32(0x7e00)));
  assert.ok(Object.is(f16BitsToF32(0x8000), -0));
});

Deno.test("f16 encode rounds to nearest even and handles extremes", () => {
  assert.equal(f32ToF16Bits(1), 0x3c00);
  assert.equal(f32ToF16Bits(65504), 0x7bff);
  assert.equal(f32ToF16Bits(70000), 0x7c00);
  assert.equal(f32ToF16Bits(2 ** -24), 0x0001);
  assert.equal(f32ToF16Bits(2 ** -26), 0x0000);
  // 1 + 2^-11 is exactly halfway between 1 and 1 + 2^-10: ties to the even mantissa (1).
  assert.equal(f32ToF16Bits(1 + 2 ** -11), 0x3c00);
  // 1 + 3 * 2^-11 is halfway between 1+2^-10 (odd) and 1+2^-9 (even): goes up.
  assert.equal(f32ToF16Bits(1 + 3 * 2 ** -11), 0x3c02);
  // Every f16 value survives a round trip through f32.
  for (let h = 0; h < 0x10000; h++) {
    if ((h & 0x7c00) === 0x7c00 && (h & 0x3ff)) continue; // NaN payloads
    assert.equal(f32ToF16Bits(f16BitsToF32(h)), h, `bits ${h.toString(16)}`);
  }
});

Deno.test("bf16 encode rounds to nearest even", () => {
  assert.equal(f32ToBf16Bits(1), 0x3f80);
  assert.equal(f32ToBf16Bits(-2), 0xc000);
  // 1 + 2^-8 is halfway between 1 (even) and 1 + 2^-7: stays 1.
  assert.equal(f32ToBf16Bits(1 + 2 ** -8), 0x3f80);
  assert.equal(f32ToBf16Bits(1 + 3 * 2 ** -8), 0x3f82);
  assert.equal(f32ToBf16Bits(NaN) & 0x7fc0, 0x7fc0);
});

Deno.test("decodeToF32 round-trips every float dtype, also from unaligned bytes", () => {
  const values = new Float32Array([0, 1, -1.5, 0.0078125, 1024, -320]);
  for (const dtype of ["F32", "F64", "BF16", "F16"] as const) {
    const bytes = encodeFromF32(values, dtype);
    const shifted = new Uint8Array(bytes.length + 1);
    shifted.set(bytes, 1);
    for (const src of [bytes, shifted.subarray(1)]) {
      const out = new Float32Array(values.length);
      decodeToF32(src, dtype, out);
      assert.deepEqual([...out], [...values], dtype);
    }
  }
});

Deno.test("decodeToF32 rejects a length mismatch", () => {
  assert.throws(
    () => decodeToF32(new Uint8Array(6), "F32", new Float32Array(2)),
    /6 bytes of F32 do not hold 2 elements/,
  );
});
