/**
 * Moves checkpoint tensors into linear memory in the format a `MatrixPlan` asks for, one
 * bounded chunk of rows at a time, so loading never holds more than the destination plus one
 * small f32 scratch chunk (`scratchBytes`, taken from the arena with mark/release):
 *
 * - float -> f32: the raw bytes are read into the upper part of the destination and widened in
 *   place (BF16/F16 -> f32 walks forward, never overwriting bytes not yet read);
 * - float -> int4: rows are decoded into the scratch and quantized by `kernels.int4Quantize`;
 * - MLX 4-bit -> int4: packed words copied as they are, scales/biases widened to f32;
 * - MLX 4-bit -> f32: the rows are dequantized by `kernels.int4Dequantize`.
 *
 * Nothing may grow the arena while a read is in flight (views into the memory would detach).
 */
import type { Kernels } from "../kernels/abi.ts";
import type { Ptr } from "../runtime/ptr.ts";
import type { Arena } from "../runtime/arena.ts";
import { decodeToF32, DTYPE_BYTES, type FloatDtype } from "./dtype.ts";
import type { MatrixRegion } from "./weight_plan.ts";
import type { TensorRef, TensorSet } from "./tensor_set.ts";

/** Default bound of the f32 scratch used while quantizing (bytes). */
export const DEFAULT_SCRATCH_BYTES = 4 << 20;

/** Loads tensors of one checkpoint into an arena. */
export class TensorLoader {
  constructor(
    readonly set: TensorSet,
    readonly kernels: Kernels,
    readonly arena: Arena,
    readonly scratchBytes: number = DEFAULT_SCRATCH_BYTES,
  ) {}

  /**
   * Elements `[start, start + count)` of a float tensor, as f32 at `dest` (`count * 4` bytes).
   */
  async loadF32(ref: TensorRef, start: number, count: number, dest: Ptr): Promise<void> {
    const dtype = ref.info.dtype as FloatDtype;
    const width = DTYPE_BYTES[dtype];
    const byteStart = start * width;
    if (width > 4) {
      // F64: wider than the destination, so it goes through a JS buffer.
      const raw = new Uint8Array(count * width);
      await ref.file.readInto(ref.info.name, raw, byteStart);
      decodeToF32(raw, dtype, this.arena.f32(dest, count));
      return;
    }
    const rawAt = dest + count * (4 - width);
    await ref.file.readInto(ref.info.name, this.arena.u8(rawAt, count * width), byteStart);
    if (width !== 4) {
      decodeToF32(this.arena.u8(rawAt, count * width), dtype, this.arena.f32(dest, count));
    }
  }

  /** A whole 1-D float tensor of `n` elements as f32 at `dest`. */
  loadVector(name: string, n: number, dest: Ptr): Promise<void> {
    return this.loadF32(this.set.get(name), 0, n, dest);
  }

  /**
   * A norm weight `[n]` as the multiplier the norm applies: `offset + w` rounded to f32 (Gemma
   * stores `w` zero-centred and multiplies by `1 + w`, computed in f32), or `w` for offset 0.
   */
  async loadNormWeight(name: string, n: number, dest: Ptr, offset: 0 | 1): Promise<void> {
    await this.loadVector(name, n, dest);
    if (offset === 0) return;
    const v = this.arena.f32(dest, n);
    for (let i = 0; i < n; i++) v[i] = v[i] + offset;
  }

  /**
   * Rows `[row0, row0 + rows)` of the matrix `region.plan` into `region` at `base`, the first of
   * those rows landing at the region's row `at`.
   */
  async loadRows(
    region: MatrixRegion,
    base: Ptr,
    row0: number,
    rows: number,
    at = 0,
  ): Promise<void> {
    const plan = region.plan;
    const K = plan.in;
    if (plan.source === "float") {
      const weight = this.set.get(`${plan.prefix}.weight`);
      if (plan.target === "f32") {
        return await this.loadF32(weight, row0 * K, rows * K, base + region.w + at * K * 4);
      }
      const g = plan.groupSize;
      const chunk = Math.max(1, Math.floor(this.scratchBytes / (K * 4)));
      for (let r = 0; r < rows; r += chunk) {
        const n = Math.min(chunk, rows - r);
        const mark = this.arena.mark();
        try {
          const w = this.arena.allocF32(n * K);
          await this.loadF32(weight, (row0 + r) * K, n * K, w);
          const dst = at + r;
          this.kernels.int4Quantize(
            base + region.q + dst * (K / 2),
            base + region.scales + dst * (K / g) * 4,
            base + region.biases + dst * (K / g) * 4,
            w,
            n,
            K,
            g,
          );
        } finally {
          this.arena.release(mark);
        }
      }
      return;
    }
    // MLX 4-bit source.
    const weight = this.set.get(`${plan.prefix}.weight`);
    const scales = this.set.get(`${plan.prefix}.scales`);
    const biases = this.set.get(`${plan.prefix}.biases`);
    const sg = plan.sourceGroupSize;
    const groups = K / sg;
    if (plan.target === "int4") {
      await weight.file.readInto(
        weight.info.name,
        this.arena.u8(base + region.q + at * (K / 2), rows * (K / 2)),
        row0 * (K / 2),
      );
      await this.loadF32(
        scales,
        row0 * groups,
        rows * groups,
        base + region.scales + at * groups * 4,
      );
      await this.loadF32(
        biases,
        row0 * groups,
        rows * groups,
        base + region.biases + at * groups * 4,
      );
      return;
    }
    const perRow = K / 2 + 2 * groups * 4;
    const chunk = Math.max(1, Math.floor(this.scratchBytes / perRow));
    for (let r = 0; r < rows; r += chunk) {
      const n = Math.min(chunk, rows - r);
      const mark = this.arena.mark();
      try {
        const q = this.arena.alloc(n * (K / 2));
        const s = this.arena.allocF32(n * groups);
        const b = this.arena.allocF32(n * groups);
        await weight.file.readInto(
          weight.info.name,
          this.arena.u8(q, n * (K / 2)),
          (row0 + r) * (K / 2),
        );
        await this.loadF32(scales, (row0 + r) * groups, n * groups, s);
        await this.loadF32(biases, (row0 + r) * groups, n * groups, b);
        this.kernels.int4Dequantize(base + region.w + (at + r) * K * 4, q, s, b, n, K, sg);
      } finally {
        this.arena.release(mark);
      }
    }
  }
}
