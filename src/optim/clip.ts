/**
 * Global gradient-norm computation and clipping over many parameter tensors, without a
 * whole-model gradient buffer: the squared norms are summed per tensor in f64 by the kernel.
 */
import type { Kernels } from "../kernels/abi.ts";
import type { ParamTensor } from "../runtime/ptr.ts";

/** Euclidean norm of all gradients together: sqrt(Σ_tensors Σ_i g_i²). */
export function globalGradNorm(kernels: Kernels, params: ParamTensor[]): number {
  let sum = 0;
  for (const p of params) sum += kernels.sumSquares(p.grad, p.n);
  return Math.sqrt(sum);
}

/** Multiplies every gradient by `s` in place. */
export function scaleGrads(kernels: Kernels, params: ParamTensor[], s: number): void {
  for (const p of params) kernels.scale(p.grad, s, p.n);
}

/**
 * Clips the global gradient norm to `maxNorm` the way PyTorch's `clip_grad_norm_` does: when the
 * norm exceeds `maxNorm`, gradients are scaled by `maxNorm / (norm + 1e-6)`. Returns the norm
 * before clipping (what trainers log). A non-finite norm leaves the gradients untouched.
 */
export function clipGradNorm(kernels: Kernels, params: ParamTensor[], maxNorm: number): number {
  const norm = globalGradNorm(kernels, params);
  const s = clipFactor(norm, maxNorm);
  if (s !== 1) scaleGrads(kernels, params, s);
  return norm;
}

/** The factor {@link clipGradNorm} scales gradients of global norm `norm` by (1: unchanged). */
export function clipFactor(norm: number, maxNorm: number): number {
  if (!(maxNorm > 0)) throw new RangeError(`maxNorm must be > 0, got ${maxNorm}`);
  return Number.isFinite(norm) && norm > maxNorm ? maxNorm / (norm + 1e-6) : 1;
}
