/**
 * A checkpoint's tensors read whole, one at a time, as f32: what the exporters stream through
 * (each tensor is read when its turn comes and dropped after it is written). Float tensors are
 * widened; an MLX 4-bit matrix (`.weight` U32 with `.scales` and `.biases` beside it) is one
 * tensor of its dequantized shape, its rows dequantized as they are read (`mlx_dequantize.ts`),
 * and its scales and biases are not tensors of their own. Portable.
 *
 * @example
 * ```ts
 * import { tensorSetSource } from "./tensor_source.ts";
 * import { openTensorSet } from "./tensor_set.ts";
 * import { memoryFiles } from "./model_source_files.ts";
 * import { serializeSafetensors } from "./safetensors_writer.ts";
 * const w = new Uint8Array(Float32Array.of(1, 2, 3, 4).buffer);
 * const file = serializeSafetensors([{ name: "w", dtype: "F32", shape: [2, 2], data: w }]);
 * const files = memoryFiles("model", { "model.safetensors": file }); // or dirFiles("./model")
 * const source = tensorSetSource(await openTensorSet(files));
 * console.log(source.shape("w"), Array.from(await source.read("w"))); // [2, 2] [1, 2, 3, 4]
 * ```
 */
import { decodeToF32, DTYPE_BYTES, isFloatDtype } from "./dtype.ts";
import {
  dequantizeMlxRows,
  isMlxSideTensor,
  type MlxMatrix,
  mlxMatrixOf,
} from "./mlx_dequantize.ts";
import { SafetensorsError } from "./safetensors.ts";
import type { TensorSet } from "./tensor_set.ts";

/** Names, shapes, and f32 values read on demand. */
export interface ModelTensorSource {
  /** Every tensor, in the checkpoint's order (an MLX matrix once, by its `.weight`). */
  names(): string[];
  has(name: string): boolean;
  shape(name: string): readonly number[];
  /** True when `name` is stored quantized and read dequantized. */
  dequantized(name: string): boolean;
  read(name: string): Promise<Float32Array>;
  /**
   * Rows `[row0, row0 + rows)` of a matrix (the first dimension), as f32: into `into` (its first
   * `rows · cols` values) when given, else a new array.
   */
  readRows(name: string, row0: number, rows: number, into?: Float32Array): Promise<Float32Array>;
}

/** Values per chunk when a large tensor is read in row chunks (16 MiB of f32). */
export const ROW_CHUNK_VALUES = 1 << 22;

/**
 * A matrix as chunks of whole rows of at most {@link ROW_CHUNK_VALUES} values (one row at least),
 * so a large embedding is never held whole. The chunks share one buffer: each is valid until the
 * next one is asked for.
 */
export async function* rowChunks(
  source: ModelTensorSource,
  name: string,
): AsyncGenerator<Float32Array> {
  const [rows, ...rest] = source.shape(name);
  const cols = rest.reduce((a, b) => a * b, 1);
  const per = Math.min(rows, Math.max(1, Math.floor(ROW_CHUNK_VALUES / Math.max(1, cols))));
  const buffer = new Float32Array(per * cols);
  for (let r = 0; r < rows; r += per) {
    const n = Math.min(per, rows - r);
    yield await source.readRows(name, r, n, buffer.subarray(0, n * cols));
  }
}

/**
 * The tensors of a safetensors checkpoint; a tensor neither float nor part of an MLX 4-bit
 * matrix is refused by name when read. `mlxGroupSize` is the config's `quantization.group_size`
 * (null for a float checkpoint): an MLX matrix of another group size, or of another bit width, is
 * refused by name before any export starts.
 */
export function tensorSetSource(
  set: TensorSet,
  mlxGroupSize: number | null = null,
): ModelTensorSource {
  const mlx = new Map<string, MlxMatrix>();
  for (const name of set.names()) {
    const m = mlxMatrixOf(set, name, mlxGroupSize);
    if (m) mlx.set(name, m);
  }
  const names = set.names().filter((n) => !isMlxSideTensor(set, n));
  // The file bytes of a read, kept for the next one (reads are sequential).
  let raw = new Uint8Array(0);
  const grow = (bytes: number) => {
    if (raw.length < bytes) raw = new Uint8Array(bytes);
    return raw.subarray(0, bytes);
  };
  const readFloat = async (name: string, row0: number, rows: number, out: Float32Array) => {
    const { file, info } = set.get(name);
    if (!isFloatDtype(info.dtype)) {
      throw new SafetensorsError(
        file.name,
        `tensor ${name} is ${info.dtype}: only float checkpoints (BF16/F16/F32) export`,
      );
    }
    const cols = info.shape.slice(1).reduce((a, b) => a * b, 1);
    const width = DTYPE_BYTES[info.dtype];
    const view = grow(rows * cols * width);
    await file.readInto(name, view, row0 * cols * width);
    decodeToF32(view, info.dtype, out);
    if (raw.length > 2 * ROW_CHUNK_VALUES * width) raw = new Uint8Array(0);
    return out;
  };
  const readMlx = async (m: MlxMatrix, row0: number, rows: number, out: Float32Array) => {
    const cols = m.shape[1];
    const groups = cols / m.groupSize;
    const scales = await readFloat(m.scales.info.name, row0, rows, new Float32Array(rows * groups));
    const biases = await readFloat(m.biases.info.name, row0, rows, new Float32Array(rows * groups));
    const packed = grow(rows * cols / 2);
    await m.weight.file.readInto(m.weight.info.name, packed, row0 * cols / 2);
    dequantizeMlxRows(packed, scales, biases, rows, cols, m.groupSize, out);
    if (raw.length > 2 * ROW_CHUNK_VALUES) raw = new Uint8Array(0);
    return out;
  };
  const shape = (name: string): readonly number[] =>
    mlx.get(name)?.shape ?? set.get(name).info.shape;
  const readRows = (name: string, row0: number, rows: number, into?: Float32Array) => {
    const cols = shape(name).slice(1).reduce((a, b) => a * b, 1);
    const out = into ? into.subarray(0, rows * cols) : new Float32Array(rows * cols);
    const m = mlx.get(name);
    return m ? readMlx(m, row0, rows, out) : readFloat(name, row0, rows, out);
  };
  return {
    names: () => [...names],
    has: (name) => set.has(name) && !isMlxSideTensor(set, name),
    shape,
    dequantized: (name) => mlx.has(name),
    read: (name) => readRows(name, 0, shape(name)[0] ?? 1),
    readRows,
  };
}
