/**
 * A checkpoint's float tensors read whole, one at a time, as f32: what the exporters stream
 * through (each tensor is read when its turn comes and dropped after it is written). Portable.
 *
 * @example
 * ```ts
 * import { tensorSetSource } from "./tensor_source.ts";
 * import { openTensorSet } from "./tensor_set.ts";
 * import { dirFiles } from "./checkpoint_files_deno.ts";
 * const source = tensorSetSource(await openTensorSet(dirFiles("./model")));
 * const embedding = await source.read("model.embed_tokens.weight");
 * ```
 */
import { decodeToF32, isFloatDtype } from "./dtype.ts";
import { SafetensorsError } from "./safetensors.ts";
import type { TensorSet } from "./tensor_set.ts";

/** Names, shapes, and f32 values read on demand. */
export interface ModelTensorSource {
  has(name: string): boolean;
  shape(name: string): readonly number[];
  read(name: string): Promise<Float32Array>;
}

/** The float tensors of a safetensors checkpoint; a quantized tensor is refused by name. */
export function tensorSetSource(set: TensorSet): ModelTensorSource {
  return {
    has: (name) => set.has(name),
    shape: (name) => set.get(name).info.shape,
    async read(name) {
      const { file, info } = set.get(name);
      if (!isFloatDtype(info.dtype)) {
        throw new SafetensorsError(
          file.name,
          `tensor ${name} is ${info.dtype}: only float checkpoints (BF16/F16/F32) export`,
        );
      }
      const raw = new Uint8Array(info.byteLength);
      await file.readInto(name, raw, 0);
      const out = new Float32Array(info.shape.reduce((a, b) => a * b, 1));
      decodeToF32(raw, info.dtype, out);
      return out;
    },
  };
}
