/**
 * An MLX 4-bit affine matrix (mlx-community checkpoints) as f32: `<prefix>.weight` U32
 * `[out, in/8]` (eight nibbles per little-endian word, the lowest first), `<prefix>.scales` and
 * `<prefix>.biases` float `[out, in/groupSize]`, and `w[n, k] = scale·q + bias` for the group of
 * `k`, computed as an f32 multiply then an f32 add (what the int4 kernels and the loader compute,
 * so an exported weight is bit-for-bit the one slimtune trains against). Portable.
 *
 * @example
 * ```ts
 * import { dequantizeMlxRows } from "./mlx_dequantize.ts";
 * // One row of 8 values, one group: nibbles 0..7 packed in one word.
 * const word = new Uint32Array([0x76543210]);
 * const out = dequantizeMlxRows(new Uint8Array(word.buffer), [0.5], [-1], 1, 8, 8);
 * // out = [-1, -0.5, 0, 0.5, 1, 1.5, 2, 2.5]
 * ```
 */
import { SafetensorsError } from "./safetensors.ts";
import { isFloatDtype } from "./dtype.ts";
import type { TensorRef, TensorSet } from "./tensor_set.ts";

/** The three tensors of one MLX 4-bit matrix and the shape they stand for. */
export interface MlxMatrix {
  weight: TensorRef;
  scales: TensorRef;
  biases: TensorRef;
  /** The dequantized matrix's `[out, in]`. */
  shape: [number, number];
  groupSize: number;
}

/** True when `name` is the scales or biases of an MLX matrix in `set` (not a tensor of its own). */
export function isMlxSideTensor(set: TensorSet, name: string): boolean {
  const m = /^(.*)\.(scales|biases)$/.exec(name);
  return m !== null && set.has(`${m[1]}.weight`) && set.has(`${m[1]}.scales`);
}

/**
 * The MLX matrix whose `.weight` is `name`, checked for a consistent 4-bit triple, or null when
 * `name` has no `.scales` beside it. A triple of another bit width (8 bits packs four values per
 * word) shows as a group size that is not the config's, and is refused naming the tensor.
 */
export function mlxMatrixOf(
  set: TensorSet,
  name: string,
  configGroupSize: number | null,
): MlxMatrix | null {
  const m = /^(.*)\.weight$/.exec(name);
  if (!m || !set.has(`${m[1]}.scales`)) return null;
  const weight = set.get(name);
  const scales = set.get(`${m[1]}.scales`);
  const biases = set.get(`${m[1]}.biases`);
  const fail = (ref: TensorRef, what: string): never => {
    throw new SafetensorsError(ref.file.name, `tensor ${ref.info.name} ${what}`);
  };
  const ws = weight.info.shape;
  if (weight.info.dtype !== "U32" || ws.length !== 2) {
    fail(weight, `is ${weight.info.dtype} [${ws}]; an MLX 4-bit weight is U32 [out, in/8]`);
  }
  for (const ref of [scales, biases]) {
    const s = ref.info.shape;
    if (!isFloatDtype(ref.info.dtype) || s.length !== 2 || s[0] !== ws[0]) {
      fail(ref, `is ${ref.info.dtype} [${s}]; expected a float [${ws[0]}, groups] beside ${name}`);
    }
  }
  const groups = scales.info.shape[1];
  if (biases.info.shape[1] !== groups) {
    fail(biases, `is [${biases.info.shape}] but ${scales.info.name} is [${scales.info.shape}]`);
  }
  const inDim = ws[1] * 8;
  const groupSize = inDim / groups;
  const expected = configGroupSize ?? groupSize;
  if (!Number.isInteger(groupSize) || groupSize % 8 !== 0 || groupSize !== expected) {
    fail(
      weight,
      `is U32 [${ws}] with ${groups} groups per row: as 4-bit that is a group size of ` +
        `${groupSize}, not the config's ${expected} (only MLX 4-bit checkpoints are read)`,
    );
  }
  return { weight, scales, biases, shape: [ws[0], inDim], groupSize };
}

/**
 * Rows of an MLX 4-bit matrix `[rows, cols]` as f32: `packed` their `rows · cols/2` bytes,
 * `scales`/`biases` their `rows · cols/groupSize` values; into `out` when given.
 */
export function dequantizeMlxRows(
  packed: Uint8Array,
  scales: ArrayLike<number>,
  biases: ArrayLike<number>,
  rows: number,
  cols: number,
  groupSize: number,
  out: Float32Array = new Float32Array(rows * cols),
): Float32Array {
  const groups = cols / groupSize;
  if (
    cols % groupSize !== 0 || groupSize % 2 !== 0 || packed.length < rows * cols / 2 ||
    scales.length < rows * groups || biases.length < rows * groups || out.length < rows * cols
  ) {
    throw new RangeError(
      `dequantizeMlxRows: ${packed.length} bytes, ${scales.length} scales, ${biases.length} ` +
        `biases, ${out.length} outputs for [${rows}, ${cols}] in groups of ${groupSize}`,
    );
  }
  const f32 = Math.fround;
  for (let n = 0; n < rows; n++) {
    for (let g = 0; g < groups; g++) {
      const s = scales[n * groups + g];
      const b = biases[n * groups + g];
      const k0 = g * groupSize;
      const at = n * cols + k0;
      const byte0 = at >> 1;
      for (let j = 0; j < groupSize; j += 2) {
        const byte = packed[byte0 + (j >> 1)];
        out[at + j] = f32(f32(s * (byte & 15)) + b);
        out[at + j + 1] = f32(f32(s * (byte >> 4)) + b);
      }
    }
  }
  return out;
}
