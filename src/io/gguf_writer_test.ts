import { deepStrictEqual, ok, rejects, strictEqual, throws } from "node:assert/strict";
import { concatChunks as concat, readGguf } from "./gguf_testing.ts";
import { f16BitsToF32 } from "./dtype.ts";
import {
  ggufChunks,
  ggufChunksAsync,
  type GgufTensor,
  type GgufValue,
  quantizeQ4_0,
  quantizeQ8_0,
} from "./gguf_writer.ts";

function values(n: number, seed: number): Float32Array {
  let s = seed;
  return Float32Array.from({ length: n }, () => {
    s = (s * 1103515245 + 12345) >>> 0;
    return (s / 2 ** 32 - 0.5) * 3;
  });
}

Deno.test("GGUF: metadata, tensor infos, alignment and F32/F16/Q8_0 data read back by an independent reader", async () => {
  const a = values(64 * 3, 1);
  const b = values(5 * 7, 2);
  const c = values(32 * 4, 3);
  c[5] = 0; // a block with zeros and an exact maximum
  const tensors: GgufTensor[] = [
    { name: "t.f32", ne: [64, 3], type: "F32", data: () => a },
    { name: "t.f16", ne: [5, 7], type: "F16", data: () => b },
    { name: "t.q8", ne: [32, 4], type: "Q8_0", data: () => c },
  ];
  const bytes = concat(ggufChunks([
    ["general.architecture", { type: "string", value: "llama" }],
    ["general.type", { type: "string", value: "adapter" }],
    ["adapter.lora.alpha", { type: "f32", value: 16 }],
    ["x.count", { type: "u32", value: 7 }],
    ["x.flag", { type: "bool", value: true }],
    ["x.names", { type: "array", of: "string", value: ["a", "βγ", ""] }],
    ["x.ids", { type: "array", of: "i32", value: [1, -2, 3] }],
  ], tensors));
  const r = await readGguf(bytes);
  strictEqual(r.metadata.version, 3);
  strictEqual(r.metadata["general.architecture"], "llama");
  strictEqual(r.metadata["general.type"], "adapter");
  strictEqual(r.metadata["adapter.lora.alpha"], 16);
  strictEqual(r.metadata["x.count"], 7);
  strictEqual(r.metadata["x.flag"], true);
  deepStrictEqual(r.metadata["x.names"], ["a", "βγ", ""]);
  deepStrictEqual(r.metadata["x.ids"], [1, -2, 3]);
  deepStrictEqual(r.tensorInfos.map((t) => [t.name, t.n_dims, t.shape.map(Number), t.dtype]), [
    ["t.f32", 2, [64, 3], 0],
    ["t.f16", 2, [5, 7], 1],
    ["t.q8", 2, [32, 4], 8],
  ]);
  const start = Number(r.tensorDataOffset);
  strictEqual(start % 32, 0);
  const at = (i: number) => start + Number(r.tensorInfos[i].offset);
  for (const t of r.tensorInfos) strictEqual(Number(t.offset) % 32, 0, t.name);
  // F32: the same bytes.
  deepStrictEqual(new Float32Array(bytes.slice(at(0), at(0) + a.length * 4).buffer), a);
  // F16: each value rounded to the nearest half (Math.f16round is the engine's own rounding).
  const h = new Uint16Array(bytes.slice(at(1), at(1) + b.length * 2).buffer);
  const f16round = (Math as unknown as { f16round: (x: number) => number }).f16round;
  for (let i = 0; i < b.length; i++) strictEqual(f16BitsToF32(h[i]), f16round(b[i]), `f16 ${i}`);
  // Q8_0: 4 blocks of (f16 scale, 32 int8); each value within half a step of its original.
  const q = bytes.slice(at(2), at(2) + 4 * 34);
  const view = new DataView(q.buffer);
  for (let blk = 0; blk < 4; blk++) {
    const d = f16BitsToF32(view.getUint16(blk * 34, true));
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(c[blk * 32 + j]));
    ok(Math.abs(d - amax / 127) <= amax / 127 * 1e-3, `scale of block ${blk}`);
    for (let j = 0; j < 32; j++) {
      const x = c[blk * 32 + j];
      const deq = d * view.getInt8(blk * 34 + 2 + j);
      ok(Math.abs(deq - x) <= d * 0.5 + amax * 1e-3, `block ${blk} value ${j}: ${deq} vs ${x}`);
    }
  }
  strictEqual(bytes.length, at(2) + 4 * 34 + ((32 - (4 * 34) % 32) % 32));
});

Deno.test("Q8_0 rounds half away from zero and maps the largest magnitude to ±127", () => {
  const x = new Float32Array(32);
  x[0] = -127; // d = 1
  x[1] = 2.5;
  x[2] = -2.5;
  x[3] = 0.49;
  const q = quantizeQ8_0(x);
  const v = new DataView(q.buffer);
  strictEqual(f16BitsToF32(v.getUint16(0, true)), 1);
  deepStrictEqual([0, 1, 2, 3].map((j) => v.getInt8(2 + j)), [-127, 3, -3, 0]);
  const zeros = quantizeQ8_0(new Float32Array(32));
  ok(zeros.every((b) => b === 0));
});

Deno.test("GGUF writer refuses shapes it cannot write, and values that do not match the shape", () => {
  throws(
    () => [
      ...ggufChunks([], [{ name: "q", ne: [33], type: "Q8_0", data: () => new Float32Array(33) }]),
    ],
    /Q8_0 needs ne\[0\] a multiple of 32, got 33/,
  );
  throws(
    () => [
      ...ggufChunks([], [{ name: "f", ne: [2, 2], type: "F32", data: () => new Float32Array(3) }]),
    ],
    /f: 3 values for shape \[2, 2\]/,
  );
  throws(
    () => [...ggufChunks([["k", { type: "u32", value: 1 }], ["k", { type: "u32", value: 2 }]], [])],
    /duplicate metadata key k/,
  );
});

Deno.test("Q4_0: the largest magnitude maps to code 0 (d = m / -8), nibbles split the block in halves", () => {
  const x = new Float32Array(32);
  x[0] = 8; // d = -1
  x[1] = -3; // -3 / -1 + 8.5 = 11.5 -> 11
  x[16] = 2.4; // -2.4 + 8.5 = 6.1 -> 6
  x[17] = -7.9; // 7.9 + 8.5 = 16.4, clamped to 15
  const q = quantizeQ4_0(x);
  strictEqual(q.length, 18);
  strictEqual(f16BitsToF32(new DataView(q.buffer).getUint16(0, true)), -1);
  strictEqual(q[2], 0 | (6 << 4)); // values 0 and 16
  strictEqual(q[3], 11 | (15 << 4)); // values 1 and 17
  strictEqual(q[4], 8 | (8 << 4)); // zeros decode to (8 - 8)·d = 0
  // Random blocks: each value decodes to within half a step (or the clamp at the top code).
  const y = values(64, 9);
  const z = quantizeQ4_0(y);
  const view = new DataView(z.buffer);
  for (let b = 0; b < 2; b++) {
    const d = f16BitsToF32(view.getUint16(b * 18, true));
    for (let j = 0; j < 32; j++) {
      const byte = z[b * 18 + 2 + (j % 16)];
      const code = j < 16 ? byte & 15 : byte >> 4;
      const err = Math.abs((code - 8) * d - y[b * 32 + j]);
      ok(err <= Math.abs(d) * 0.5 + 1e-3 * Math.abs(d) * 8 || code === 15, `block ${b} value ${j}`);
    }
  }
});

Deno.test("ggufChunksAsync: row chunks give the bytes of the whole tensor; a chunk of part of a row is refused", async () => {
  const a = values(64 * 6, 4);
  const md: [string, GgufValue][] = [["general.architecture", { type: "string", value: "llama" }]];
  const collect = async (data: () => Float32Array | AsyncIterable<Float32Array>) => {
    const parts: Uint8Array[] = [];
    for await (const c of ggufChunksAsync(md, [{ name: "t", ne: [64, 6], type: "Q8_0", data }])) {
      parts.push(c);
    }
    return concat(parts);
  };
  const whole = await collect(() => a);
  const chunked = await collect(async function* () {
    yield a.subarray(0, 128);
    yield a.subarray(128, 320);
    yield a.subarray(320);
  });
  deepStrictEqual(chunked, whole);
  await rejects(
    () =>
      collect(async function* () {
        yield a.subarray(0, 100);
      }),
    /t: a chunk of 100 values is not whole rows of 64/,
  );
  await rejects(
    () =>
      collect(async function* () {
        yield a.subarray(0, 128);
      }),
    /t: 128 values for shape \[64, 6\]/,
  );
});
