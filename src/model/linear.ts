/**
 * A frozen linear with an optional LoRA adapter, over flat row-major buffers of `T` rows:
 * `y = x W0ᵀ (+ b) + s (x Aᵀ) Bᵀ`.
 *
 * Backward (docs/design.md, "LoRA"), with upstream gradient `g [T, out]` and `h = x Aᵀ [T, r]`:
 * `dB += s gᵀ h`, `dh = s g B`, `dA += dhᵀ x`, `dx (+)= dh A + g W0`. The base term uses the
 * frozen weight through the int4 kernels (never a dequantized matrix) or the f32 GEMMs.
 */
import type { Kernels } from "../kernels/abi.ts";
import type { Ptr } from "../runtime/ptr.ts";
import type { Arena } from "../runtime/arena.ts";
import type { LoraLinear } from "./lora.ts";
import type { LinearWeight } from "./weights.ts";

/** out[T, out] (+)= x[T, in] · W0ᵀ (no bias). */
export function baseForward(
  k: Kernels,
  w: LinearWeight,
  out: Ptr,
  x: Ptr,
  T: number,
  acc: number,
): void {
  if (w.kind === "f32") k.matmulABt(out, x, w.w, T, w.out, w.in, 1, acc);
  else k.int4MatmulXWt(out, x, w.q, w.scales, w.biases, T, w.out, w.in, w.groupSize, 1, acc);
}

/**
 * out[T, out] = x[T, in] · W0ᵀ + bias, the bias added by the GEMM's epilogue (the same bits as
 * {@link baseForward} then addBias).
 */
export function baseForwardBias(
  k: Kernels,
  w: LinearWeight,
  bias: Ptr,
  out: Ptr,
  x: Ptr,
  T: number,
): void {
  if (w.kind === "f32") k.matmulABtBias(out, x, w.w, bias, T, w.out, w.in);
  else k.int4MatmulXWtBias(out, x, w.q, w.scales, w.biases, bias, T, w.out, w.in, w.groupSize);
}

/** dx[T, in] (+)= g[T, out] · W0. */
export function baseBackward(
  k: Kernels,
  w: LinearWeight,
  dx: Ptr,
  g: Ptr,
  T: number,
  acc: number,
): void {
  if (w.kind === "f32") k.matmulAB(dx, g, w.w, T, w.in, w.out, 1, acc);
  else k.int4MatmulGW(dx, g, w.q, w.scales, w.biases, T, w.out, w.in, w.groupSize, 1, acc);
}

/**
 * A residual stream the output of a linear is added to: `into` false makes the output
 * `out + res` (add(out, out, res)); `into` true adds the output into `res` (add(res, res, out))
 * and leaves out as the linear's value. `res` is [T, out] like out.
 */
export interface Residual {
  res: Ptr;
  into: boolean;
}

/**
 * Forward of a LoRA linear: out[T, out] = x W0ᵀ + b + s (x Aᵀ) Bᵀ.
 * `h` (optional, [T, r]) receives `x Aᵀ` for a tape; without it `h` lives in a temporary.
 * `residual` adds a residual stream afterwards, in the last GEMM's epilogue when there is an
 * adapter (the same bits as the separate add).
 */
export function loraLinearForward(
  k: Kernels,
  arena: Arena,
  w: LinearWeight,
  lora: LoraLinear | undefined,
  out: Ptr,
  x: Ptr,
  T: number,
  h?: Ptr,
  residual?: Residual,
): void {
  if (w.bias !== null) baseForwardBias(k, w, w.bias, out, x, T);
  else baseForward(k, w, out, x, T, 0);
  if (!lora) {
    if (residual?.into) k.add(residual.res, residual.res, out, T * w.out);
    else if (residual) k.add(out, out, residual.res, T * w.out);
    return;
  }
  const mark = arena.mark();
  const hp = h ?? arena.allocF32(T * lora.rank);
  k.matmulABt(hp, x, lora.a.ptr, T, lora.rank, lora.inFeatures, 1, 0);
  const [B, N, r, s] = [lora.b.ptr, lora.outFeatures, lora.rank, lora.scale];
  if (residual) k.matmulABtResidual(out, residual.res, hp, B, T, N, r, s, 1, residual.into ? 1 : 0);
  else k.matmulABt(out, hp, B, T, N, r, s, 1);
  arena.release(mark);
}

/**
 * The adapter half of a LoRA linear's backward: `dB += s gᵀ h`, `dh = s g B` (written to `dh`,
 * [T, r]), `dA += dhᵀ x`. `h` is the tape's `x Aᵀ`; when null it is recomputed from `x` and A
 * (MeSP: r ≪ in, so this costs a sliver of the base matmul). Uses B as it is now, i.e. before
 * this step's update (the optimizer runs after the block's backward).
 */
export function loraWeightGrads(
  k: Kernels,
  arena: Arena,
  lora: LoraLinear,
  dh: Ptr,
  g: Ptr,
  x: Ptr,
  T: number,
  h: Ptr | null,
): void {
  const r = lora.rank;
  const mark = arena.mark();
  let hp = h;
  if (hp === null) {
    hp = arena.allocF32(T * r);
    k.matmulABt(hp, x, lora.a.ptr, T, r, lora.inFeatures, 1, 0);
  }
  k.matmulAtB(lora.b.grad, g, hp, lora.outFeatures, r, T, lora.scale, 1);
  arena.release(mark);
  k.matmulAB(dh, g, lora.b.ptr, T, r, lora.outFeatures, lora.scale, 0);
  k.matmulAtB(lora.a.grad, dh, x, r, lora.inFeatures, T, 1, 1);
}

/** The input-gradient half: dx (+)= g W0 + dh A (`dh` from {@link loraWeightGrads}). */
export function linearInputGrad(
  k: Kernels,
  w: LinearWeight,
  lora: LoraLinear | undefined,
  dx: Ptr,
  g: Ptr,
  dh: Ptr,
  T: number,
  acc: number,
): void {
  baseBackward(k, w, dx, g, T, acc);
  if (lora) k.matmulAB(dx, dh, lora.a.ptr, T, lora.inFeatures, lora.rank, 1, 1);
}

/**
 * Whole backward of a LoRA linear: accumulates dA, dB into the adapter's gradient buffers and
 * writes (`accDx` 0) or adds (1) the input gradient into `dx`. `h` as in {@link loraWeightGrads}.
 */
export function loraLinearBackward(
  k: Kernels,
  arena: Arena,
  w: LinearWeight,
  lora: LoraLinear | undefined,
  dx: Ptr,
  g: Ptr,
  x: Ptr,
  T: number,
  h: Ptr | null,
  accDx: number,
): void {
  const mark = arena.mark();
  const dh = lora ? arena.allocF32(T * lora.rank) : 0;
  if (lora) loraWeightGrads(k, arena, lora, dh, g, x, T, h);
  linearInputGrad(k, w, lora, dx, g, dh, T, accDx);
  arena.release(mark);
}
