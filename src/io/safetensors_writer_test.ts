import assert from "node:assert/strict";
import {
  safetensorsChunks,
  serializeSafetensors,
  tensorBytes,
  type TensorData,
} from "./safetensors_writer.ts";

function f32Bytes(...v: number[]): Uint8Array {
  return new Uint8Array(new Float32Array(v).buffer);
}

/** Parses a file by hand (independently of the library reader). */
function parse(bytes: Uint8Array) {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  const text = new TextDecoder().decode(bytes.subarray(8, 8 + n));
  return { n, text, json: JSON.parse(text), data: bytes.subarray(8 + n) };
}

const tensors: TensorData[] = [
  { name: "a", dtype: "F32", shape: [2, 1], data: f32Bytes(1, 2) },
  { name: "b", dtype: "U8", shape: [3], data: new Uint8Array([7, 8, 9]) },
  { name: "empty", dtype: "BF16", shape: [0, 4], data: new Uint8Array(0) },
];

Deno.test("serializeSafetensors writes an aligned header, offsets and data in order", () => {
  const file = serializeSafetensors(tensors, { format: "pt" });
  const { n, text, json, data } = parse(file);
  assert.equal(n % 8, 0);
  assert.match(text, / *$/);
  assert.deepEqual(json.__metadata__, { format: "pt" });
  assert.deepEqual(json.a, { dtype: "F32", shape: [2, 1], data_offsets: [0, 8] });
  assert.deepEqual(json.b, { dtype: "U8", shape: [3], data_offsets: [8, 11] });
  assert.deepEqual(json.empty, { dtype: "BF16", shape: [0, 4], data_offsets: [11, 11] });
  assert.equal(data.length, 11);
  assert.deepEqual([...new Float32Array(data.slice(0, 8).buffer)], [1, 2]);
  assert.deepEqual([...data.subarray(8)], [7, 8, 9]);
});

Deno.test("safetensorsChunks yields the same bytes, producing lazy tensors on demand", async () => {
  let produced = 0;
  const lazy = tensors.map((t) => ({
    ...t,
    data: () => {
      produced++;
      return t.data;
    },
  }));
  const it = safetensorsChunks(lazy, { format: "pt" });
  const first = await it.next();
  assert.equal(produced, 0, "header comes before any tensor is produced");
  const parts = [first.value as Uint8Array];
  for await (const c of it) parts.push(c);
  assert.equal(produced, 3);
  const joined = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let at = 0;
  for (const p of parts) {
    joined.set(p, at);
    at += p.length;
  }
  assert.deepEqual(joined, serializeSafetensors(tensors, { format: "pt" }));
});

Deno.test("lazy tensors may be produced as chunks, whose total length is checked", async () => {
  const chunked = [{
    name: "a",
    dtype: "F32" as const,
    shape: [2, 1],
    data: function* () {
      yield f32Bytes(1);
      yield f32Bytes(2);
    },
  }];
  const parts: Uint8Array[] = [];
  for await (const c of safetensorsChunks(chunked)) parts.push(c);
  assert.deepEqual(parts.slice(1), [f32Bytes(1), f32Bytes(2)]);
  const short = [{ ...chunked[0], data: () => [f32Bytes(1)] }];
  await assert.rejects(async () => {
    for await (const _ of safetensorsChunks(short)) { /* drain */ }
  }, /tensor a: chunks hold 4 data bytes, expected 8/);
  const long = [{ ...chunked[0], data: () => [f32Bytes(1, 2, 3)] }];
  await assert.rejects(async () => {
    for await (const _ of safetensorsChunks(long)) { /* drain */ }
  }, /tensor a: chunks hold more than 8 data bytes/);
});

Deno.test("writer rejects bad tensors with the tensor's name", async () => {
  const t = (over: Partial<TensorData>): TensorData[] => [{ ...tensors[0], ...over }];
  assert.throws(
    () => serializeSafetensors(t({ data: new Uint8Array(4) })),
    /tensor a: 4 data bytes, expected 8/,
  );
  assert.throws(() => serializeSafetensors(t({ shape: [-1] })), /tensor a: bad dimension -1/);
  assert.throws(() => serializeSafetensors(t({ dtype: "F128" as "F32" })), /unknown dtype F128/);
  assert.throws(() => serializeSafetensors([tensors[0], tensors[0]]), /duplicate tensor name a/);
  assert.throws(() => serializeSafetensors(t({ name: "__metadata__" })), /bad tensor name/);
  assert.throws(
    () => serializeSafetensors([], { x: 1 as unknown as string }),
    /__metadata__ value for "x" must be a string/,
  );
  const lazyWrong = [{ ...tensors[0], data: () => new Uint8Array(3) }];
  await assert.rejects(async () => {
    for await (const _ of safetensorsChunks(lazyWrong)) { /* drain */ }
  }, /tensor a: 3 data bytes/);
});

Deno.test("tensorBytes: a view of ordinary memory, a copy of shared memory (with the same bytes)", () => {
  const mem = new Float32Array([1, 2, 3, 4, 5]);
  const part = mem.subarray(1, 4);
  const view = tensorBytes(part);
  assert.equal(view.buffer, mem.buffer);
  assert.deepEqual([view.byteOffset, view.byteLength], [4, 12]);
  const shared = new Float32Array(new SharedArrayBuffer(20));
  shared.set(mem);
  const copy = tensorBytes(shared.subarray(1, 4));
  assert.ok(!(copy.buffer instanceof SharedArrayBuffer));
  assert.deepEqual(copy, new Uint8Array(mem.buffer, 4, 12));
});
