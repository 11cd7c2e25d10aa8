/**
 * The two words every floor above the ground shares about linear memory: a pointer into it, and
 * a trainable tensor held there with its gradient.
 */

/**
 * Byte offset into the kernels' linear memory, 16-byte aligned for f32 tensors and u32 weight
 * arrays (the arena guarantees it).
 */
export type Ptr = number;

/** A trainable f32 tensor and its gradient, both `n` floats in the arena. */
export interface ParamTensor {
  name: string;
  ptr: Ptr;
  grad: Ptr;
  n: number;
}
