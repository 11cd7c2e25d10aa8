import assert from "node:assert/strict";
import { dequantizeMlxRows, isMlxSideTensor, mlxMatrixOf } from "./mlx_dequantize.ts";
import { serializeSafetensors, type TensorData } from "./safetensors_writer.ts";
import { openTensorSet } from "./tensor_set.ts";
import { memoryFiles } from "./model_source_files.ts";
import { encodeFromF32 } from "./dtype.ts";
import { dequantizeInt4At } from "../kernels/reference/int4.ts";
import { makeRandom } from "../kernels/_testing.ts";

const u8 = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

Deno.test("dequantizeMlxRows: scale * q + bias per group, as the int4 kernels compute it", () => {
  const rand = makeRandom(5);
  const N = 3, K = 64, GS = 16;
  const q = new Uint32Array(N * K / 8).map(() => Math.floor(((rand() + 1) / 2) * 2 ** 32) >>> 0);
  const scales = new Float32Array(N * K / GS).map(() => Math.fround(0.01 * rand()));
  const biases = new Float32Array(N * K / GS).map(() => Math.fround(0.1 * rand()));
  const got = dequantizeMlxRows(u8(q), scales, biases, N, K, GS);
  for (let n = 0; n < N; n++) {
    for (let k = 0; k < K; k++) {
      assert.equal(got[n * K + k], dequantizeInt4At(q, scales, biases, K, GS, n, k), `${n},${k}`);
    }
  }
  // Rows 1..2 alone: their bytes, scales and biases, into a caller's buffer.
  const into = new Float32Array(2 * K + 5);
  const rows = dequantizeMlxRows(
    u8(q).subarray(K / 2),
    scales.subarray(K / GS),
    biases.subarray(K / GS),
    2,
    K,
    GS,
    into,
  );
  assert.equal(rows, into);
  assert.deepEqual(into.subarray(0, 2 * K), got.subarray(K));
  assert.throws(
    () => dequantizeMlxRows(u8(q), scales, biases, N + 1, K, GS),
    /dequantizeMlxRows: 96 bytes, 12 scales, 12 biases, 256 outputs for \[4, 64\] in groups of 16/,
  );
});

async function setOf(tensors: TensorData[]) {
  return await openTensorSet(
    memoryFiles("m", { "model.safetensors": serializeSafetensors(tensors) }),
  );
}

function triple(prefix: string, out: number, packed: number, groups: number): TensorData[] {
  const f = encodeFromF32(new Float32Array(out * groups), "F16");
  return [
    {
      name: `${prefix}.weight`,
      dtype: "U32",
      shape: [out, packed],
      data: new Uint8Array(out * packed * 4),
    },
    { name: `${prefix}.scales`, dtype: "F16", shape: [out, groups], data: f },
    { name: `${prefix}.biases`, dtype: "F16", shape: [out, groups], data: f },
  ];
}

Deno.test("mlxMatrixOf: a 4-bit triple's shape and group size; other bit widths and shapes refused by name", async () => {
  const norm: TensorData = { name: "n.weight", dtype: "F32", shape: [4], data: new Uint8Array(16) };
  const set = await setOf([...triple("a", 4, 8, 2), norm]);
  const m = mlxMatrixOf(set, "a.weight", 32)!;
  assert.deepEqual(m.shape, [4, 64]);
  assert.equal(m.groupSize, 32);
  assert.equal(mlxMatrixOf(set, "a.weight", null)!.groupSize, 32);
  assert.equal(mlxMatrixOf(set, "n.weight", 32), null);
  assert.equal(isMlxSideTensor(set, "a.scales"), true);
  assert.equal(isMlxSideTensor(set, "a.biases"), true);
  assert.equal(isMlxSideTensor(set, "a.weight"), false);
  assert.equal(isMlxSideTensor(set, "n.weight"), false);
  // 8-bit packs four values per word: [4, 16] words for 64 inputs in groups of 32 reads as 4-bit
  // groups of 64.
  assert.throws(
    () => mlxMatrixOf(set, "a.weight", 64),
    /^SafetensorsError: m\/model\.safetensors: tensor a\.weight is U32 \[4,8\] with 2 groups per row: as 4-bit that is a group size of 32, not the config's 64/,
  );
  const bad = await setOf([
    ...triple("f", 4, 8, 2).map((t) => t.name === "f.weight" ? { ...t, dtype: "F32" as const } : t),
    ...triple("s", 4, 8, 2).map((t) =>
      t.name === "s.biases" ? { ...t, shape: [4, 1], data: t.data.subarray(0, 8) } : t
    ),
    ...triple("r", 4, 8, 2).map((t) => t.name === "r.scales" ? { ...t, shape: [2, 4] } : t),
  ]);
  assert.throws(
    () => mlxMatrixOf(bad, "f.weight", 32),
    /tensor f\.weight is F32 \[4,8\]; an MLX 4-bit weight is U32 \[out, in\/8\]/,
  );
  assert.throws(
    () => mlxMatrixOf(bad, "s.weight", 32),
    /tensor s\.biases is \[4,1\] but s\.scales is \[4,2\]/,
  );
  assert.throws(
    () => mlxMatrixOf(bad, "r.weight", 32),
    /tensor r\.scales is F16 \[2,4\]; expected a float \[4, groups\] beside r\.weight/,
  );
});
