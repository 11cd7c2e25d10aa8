/**
 * Test fixture: a float checkpoint directory turned into an mlx-community style 4-bit one. Every
 * linear, the embedding and an untied LM head become the MLX triple (`weight` U32 `[out, in/8]`,
 * `scales`/`biases` F16 `[out, in/groupSize]`), quantized by the reference int4 rule; norms and
 * biases stay as they are; config.json gains `quantization: {group_size, bits: 4}`; the
 * tokenizer files are copied.
 */
import { SafetensorsFile } from "../src/io/safetensors.ts";
import { openFileSource } from "../src/deno/file_source.ts";
import { serializeSafetensors, type TensorData } from "../src/io/safetensors_writer.ts";
import { decodeToF32, encodeFromF32, type FloatDtype } from "../src/io/dtype.ts";
import { quantizeInt4 } from "../src/kernels/reference/int4.ts";
import { linearOfWeight } from "../src/train/merge_adapter.ts";

/** True for the tensors mlx-lm quantizes: the linears, the embedding, the LM head. */
function quantizedByMlx(name: string, shape: readonly number[]): boolean {
  return shape.length === 2 &&
    (linearOfWeight(name) !== null || name === "model.embed_tokens.weight" ||
      name === "lm_head.weight");
}

/** Writes `out` (created) as the MLX 4-bit version of the float checkpoint `dir`. */
export async function mlxQuantizedCheckpoint(
  dir: string,
  out: string,
  groupSize = 32,
): Promise<void> {
  await Deno.mkdir(out, { recursive: true });
  const file = await SafetensorsFile.open(await openFileSource(`${dir}/model.safetensors`));
  const tensors: TensorData[] = [];
  const bytes = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  try {
    for (const name of file.names()) {
      const info = file.info(name);
      const raw = await file.read(name);
      if (!quantizedByMlx(name, info.shape)) {
        tensors.push({ name, dtype: info.dtype, shape: info.shape, data: raw });
        continue;
      }
      const [n, k] = info.shape;
      const w = new Float32Array(n * k);
      decodeToF32(raw, info.dtype as FloatDtype, w);
      const q = new Uint32Array(n * k / 8);
      const scales = new Float32Array(n * k / groupSize);
      const biases = new Float32Array(n * k / groupSize);
      quantizeInt4(q, scales, biases, w, n, k, groupSize);
      const prefix = name.replace(/\.weight$/, "");
      const groups = [n, k / groupSize];
      tensors.push(
        { name, dtype: "U32", shape: [n, k / 8], data: bytes(q) },
        {
          name: `${prefix}.scales`,
          dtype: "F16",
          shape: groups,
          data: encodeFromF32(scales, "F16"),
        },
        {
          name: `${prefix}.biases`,
          dtype: "F16",
          shape: groups,
          data: encodeFromF32(biases, "F16"),
        },
      );
    }
  } finally {
    await file.close();
  }
  await Deno.writeFile(
    `${out}/model.safetensors`,
    serializeSafetensors(tensors, { format: "mlx" }),
  );
  const config = JSON.parse(await Deno.readTextFile(`${dir}/config.json`));
  config.quantization = { group_size: groupSize, bits: 4 };
  await Deno.writeTextFile(`${out}/config.json`, JSON.stringify(config, null, 2));
  for await (const e of Deno.readDir(dir)) {
    if (e.isFile && /^tokenizer.*\.json$/.test(e.name)) {
      await Deno.copyFile(`${dir}/${e.name}`, `${out}/${e.name}`);
    }
  }
}
