/**
 * MeZO (Malladi et al., arXiv 2305.17333): zeroth-order SPSA fine-tuning with the seed trick.
 *
 * One step with seed `s`: `θ+ = θ + εz`, loss L+; `θ- = θ - εz`, loss L-; restore θ;
 * `g = (L+ - L-) / 2ε` (the projected gradient); `θ -= lr (g z + wd θ)`.
 *
 * z is never stored: element `e` of parameter tensor `t` is a pure function of (s, t, e)
 * (Philox4x32-10 normal stream, see `src/runtime/philox.ts`), regenerated in chunks of
 * {@link MEZO_CHUNK} floats into one fixed arena buffer whenever it is needed.
 *
 * Exact restore, just in time. In f32, `θ + εz - 2εz + εz` is not θ in general (each addition
 * rounds), and the drift accumulates over thousands of steps. So θ± are computed from an exact
 * copy and θ is restored by copying it back. The copy is ONE block's worth: a LoRA tensor of
 * transformer block i is read only inside block i's forward, so the loss pass calls
 * `hooks.beforeBlock(i)` right before that forward (block i's tensors are copied to the backup
 * slot and get `± εz` added) and `hooks.afterBlock(i)` right after it (copied back). θ is exact
 * again after every block; the backup holds the largest block (0.7 MiB for Qwen2.5-0.5B at rank
 * 8, against 16.8 MiB for a whole-model copy). With `lr = 0` a step leaves θ bit-identical.
 * Without `blocks`, every tensor is one block, perturbed around the whole `loss()` call.
 *
 * @example
 * ```ts
 * import { loadKernelsSync } from "../kernels/wasm.ts";
 * import { mezoStep } from "./mezo.ts";
 * const { kernels, arena } = loadKernelsSync({ variant: "reference" });
 * const p = { name: "w", ptr: arena.allocF32(3), grad: 0, n: 3 };
 * arena.f32(p.ptr, 3).set([1, 2, 3]);
 * const loss = () => Promise.resolve(arena.f32(p.ptr, 3).reduce((s, x) => s + x * x, 0));
 * const r = await mezoStep({ kernels, arena, params: [p], loss, eps: 1e-3, lr: 1e-2, weightDecay: 0, seed: 1 });
 * console.log(r.projectedGrad);
 * ```
 */
import type { Kernels } from "../kernels/abi.ts";
import type { Ptr } from "../runtime/ptr.ts";
import type { BlockHooks } from "../model/transformer.ts";
import type { Arena } from "../runtime/arena.ts";
import { fillNormalStream } from "../runtime/philox.ts";
import type { ParamTensor } from "../runtime/ptr.ts";
import type { StepParts } from "./step_plan.ts";

/** Floats of z generated at a time (a multiple of 4, the Philox block). */
export const MEZO_CHUNK = 4096;

/** Arena buffers one MeZO step needs: the backup slot of one block and one z chunk. */
export interface MezoWorkspace {
  /** Backup of the tensors of ONE block, packed in their `blocks` order. */
  backup: Ptr;
  /** One chunk of z (`MEZO_CHUNK` floats). */
  z: Ptr;
  /** Floats in `backup` (the largest block). */
  backupFloats: number;
  /** Bytes of linear memory the workspace holds. */
  bytes: number;
}

/** The buffers of a workspace whose largest block holds `backupFloats` floats. */
export function mezoWorkspaceTable(backupFloats: number) {
  return { backup: backupFloats, z: MEZO_CHUNK };
}

/**
 * Peak bytes of a MeZO step's activations: the residual stream, then the larger of a block's lean
 * forward and the loss-only head (each of its forward passes frees everything before the next).
 */
export function mezoStepBytes(p: StepParts): number {
  return p.residual + Math.max(p.leanForward, p.headForward);
}

/** Floats of the largest block (all of `params` as one block without `blocks`). */
function largestBlock(params: ParamTensor[], blocks?: number[][]): number {
  if (!blocks) return params.reduce((s, p) => s + p.n, 0);
  let most = 0;
  for (const b of blocks) most = Math.max(most, b.reduce((s, t) => s + params[t].n, 0));
  return most;
}

/**
 * Allocates a workspace for `params` grouped by `blocks` (see {@link MezoStepOptions.blocks})
 * once; reuse it every step so steps never allocate.
 */
export function createMezoWorkspace(
  arena: Arena,
  params: ParamTensor[],
  blocks?: number[][],
): MezoWorkspace {
  if (blocks) checkBlocks(params, blocks);
  const backupFloats = largestBlock(params, blocks);
  const t = mezoWorkspaceTable(backupFloats);
  const before = arena.mark();
  const backup = arena.allocF32(t.backup);
  const z = arena.allocF32(t.z);
  return { backup, z, backupFloats, bytes: arena.mark() - before };
}

/** Every tensor index in exactly one block (else z of a tensor is applied but never probed). */
function checkBlocks(params: ParamTensor[], blocks: number[][]): void {
  const seen = new Uint8Array(params.length);
  for (const b of blocks) {
    for (const t of b) {
      if (!(Number.isInteger(t) && t >= 0 && t < params.length)) {
        throw new RangeError(`MeZO blocks: no tensor ${t}`);
      }
      if (seen[t]++) throw new RangeError(`MeZO blocks: tensor ${t} is in two blocks`);
    }
  }
  const missing = seen.indexOf(0);
  if (missing >= 0) throw new RangeError(`MeZO blocks: tensor ${missing} is in no block`);
}

/** Arguments of {@link mezoStep}. */
export interface MezoStepOptions {
  kernels: Kernels;
  arena: Arena;
  /** Trainable tensors; their position in this array is the tensor index keying z. */
  params: ParamTensor[];
  /**
   * Tensor indices of each block (a partition of `params`): the tensors `loss` reads only between
   * `hooks.beforeBlock(i)` and `hooks.afterBlock(i)`. Omitted: all tensors form one block,
   * perturbed by the step itself around each `loss()` call (the loss may ignore the hooks), which
   * needs a backup of every tensor.
   */
  blocks?: number[][];
  /**
   * Loss at the current parameter values (a forward pass). Called twice per step, with the hooks
   * it must call around each block when `blocks` is given: between `beforeBlock(i)` and
   * `afterBlock(i)` the tensors of block i hold θ ± εz. At most one block is perturbed at a time;
   * every non-empty block must be run at least once per pass (more often is fine: each run
   * perturbs the exact θ the same way, e.g. one per micro-batch).
   */
  loss: (hooks: BlockHooks) => Promise<number>;
  /** Perturbation scale ε (MeZO default for LoRA: 1e-2). */
  eps: number;
  /** Learning rate (MeZO default for LoRA: 5e-5); 0 leaves θ bit-identical. */
  lr: number;
  weightDecay: number;
  /** Seed of this step's direction z (a safe integer; draw a fresh one every step). */
  seed: number;
  /**
   * Preallocated buffers (recommended). Without one the step allocates them from the arena and
   * releases them at the end, which requires `loss()` to leave the arena's top where it found it.
   */
  workspace?: MezoWorkspace;
}

/** What one step measured. */
export interface MezoStepResult {
  lossPlus: number;
  lossMinus: number;
  /** g = (L+ - L-) / 2ε: the directional derivative along z; the estimate is g·z. */
  projectedGrad: number;
  /** (L+ + L-) / 2, an O(ε²) estimate of the loss at θ, for logging. */
  loss: number;
}

const NO_HOOKS: BlockHooks = { beforeBlock: () => {}, afterBlock: () => {} };

/**
 * One MeZO step (see the module doc). If the projected gradient is not finite (a loss was NaN or
 * infinite), θ is restored and left un-updated; the result reports the non-finite value. θ is
 * also restored when `loss` throws or misuses the hooks (which throws).
 */
export async function mezoStep(o: MezoStepOptions): Promise<MezoStepResult> {
  const { kernels, arena, params } = o;
  if (!(o.eps > 0)) throw new RangeError(`MeZO eps must be > 0, got ${o.eps}`);
  const whole = o.blocks === undefined;
  const blocks = o.blocks ?? [params.map((_, t) => t)];
  if (!whole) checkBlocks(params, blocks);
  const ownMark = o.workspace ? -1 : arena.mark();
  const ws = o.workspace ?? createMezoWorkspace(arena, params, o.blocks);
  const need = largestBlock(params, o.blocks);
  if (need > ws.backupFloats) {
    throw new Error(`MeZO workspace holds ${ws.backupFloats} floats, a block needs ${need}`);
  }
  const topAfterWorkspace = arena.mark();

  let scale = 0; // ±ε during a loss pass, 0 outside
  let held = -1; // the block perturbed now (its exact values in the backup)
  const runs = new Int32Array(blocks.length);
  const hooks: BlockHooks = {
    beforeBlock: (b) => {
      if (scale === 0) throw new Error(`MeZO beforeBlock(${b}) outside a loss pass`);
      if (!(Number.isInteger(b) && b >= 0 && b < blocks.length)) {
        throw new RangeError(`MeZO beforeBlock(${b}): no such block`);
      }
      if (held !== -1) {
        throw new Error(`MeZO beforeBlock(${b}) while block ${held} is perturbed`);
      }
      copyBlock(arena, params, blocks[b], ws.backup, "save");
      held = b;
      runs[b]++;
      forEachChunk(
        arena,
        params,
        blocks[b],
        ws,
        o.seed,
        (p, z, len) => kernels.axpy(p, z, scale, len),
      );
    },
    afterBlock: (b) => {
      if (held !== b) throw new Error(`MeZO afterBlock(${b}): block ${b} is not perturbed`);
      copyBlock(arena, params, blocks[b], ws.backup, "restore");
      held = -1;
    },
  };
  const pass = async (s: number): Promise<number> => {
    scale = s;
    runs.fill(0);
    try {
      if (whole) hooks.beforeBlock(0);
      const value = await o.loss(whole ? NO_HOOKS : hooks);
      if (whole) hooks.afterBlock(0);
      if (held !== -1) throw new Error(`MeZO: loss() returned with block ${held} perturbed`);
      const skipped = blocks.findIndex((b, i) => b.length > 0 && runs[i] === 0);
      if (skipped >= 0) throw new Error(`MeZO: loss() never ran block ${skipped}`);
      return value;
    } finally {
      scale = 0;
    }
  };

  let lossPlus: number, lossMinus: number;
  try {
    lossPlus = await pass(o.eps);
    lossMinus = await pass(-o.eps);
  } catch (e) {
    // θ must never be left perturbed, also when loss() throws.
    if (held !== -1) copyBlock(arena, params, blocks[held], ws.backup, "restore");
    held = -1;
    if (ownMark >= 0 && arena.mark() === topAfterWorkspace) arena.release(ownMark);
    throw e;
  }

  if (ownMark >= 0 && arena.mark() !== topAfterWorkspace) {
    // θ is restored and not updated; the temporary workspace cannot be released under the
    // allocations loss() left behind.
    throw new Error(
      "mezoStep: loss() left the arena top moved, so the temporary workspace cannot be " +
        "released; pass a workspace from createMezoWorkspace",
    );
  }
  const projectedGrad = (lossPlus - lossMinus) / (2 * o.eps);
  if (o.lr !== 0 && Number.isFinite(projectedGrad)) {
    // θ -= lr (g z + wd θ): the SGD kernel on the chunk g·z, which is the estimated gradient.
    forEachChunk(arena, params, params.map((_, t) => t), ws, o.seed, (pPtr, zPtr, len) => {
      kernels.scale(zPtr, projectedGrad, len);
      kernels.sgdStep(pPtr, zPtr, len, o.lr, o.weightDecay);
    });
  }

  if (ownMark >= 0) arena.release(ownMark);
  return { lossPlus, lossMinus, projectedGrad, loss: (lossPlus + lossMinus) / 2 };
}

/** Copies the tensors `tensors` into (`save`) or out of (`restore`) the packed backup. */
function copyBlock(
  arena: Arena,
  params: ParamTensor[],
  tensors: number[],
  backup: Ptr,
  dir: "save" | "restore",
) {
  const bytes = new Uint8Array(arena.memory.buffer); // fresh: loss() may have grown the memory
  let at = backup;
  for (const t of tensors) {
    const p = params[t];
    const len = p.n * 4;
    if (dir === "save") bytes.copyWithin(at, p.ptr, p.ptr + len);
    else bytes.copyWithin(p.ptr, at, at + len);
    at += len;
  }
}

/**
 * Regenerates z of the tensors `tensors` chunk by chunk into `ws.z` and hands each chunk with
 * its parameter slice.
 */
function forEachChunk(
  arena: Arena,
  params: ParamTensor[],
  tensors: number[],
  ws: MezoWorkspace,
  seed: number,
  fn: (paramPtr: Ptr, zPtr: Ptr, len: number) => void,
) {
  for (const t of tensors) {
    const p = params[t];
    for (let off = 0; off < p.n; off += MEZO_CHUNK) {
      const len = Math.min(MEZO_CHUNK, p.n - off);
      fillNormalStream(arena.f32(ws.z, len), seed, t, off);
      fn(p.ptr + off * 4, ws.z, len);
    }
  }
}

/**
 * z for tensor `tensorIndex`, elements `offset .. offset + out.length` (offset a multiple of 4):
 * exactly the direction {@link mezoStep} used with `seed`.
 */
export function mezoDirection(
  out: Float32Array,
  seed: number,
  tensorIndex: number,
  offset = 0,
): void {
  fillNormalStream(out, seed, tensorIndex, offset);
}

/**
 * The MeZO gradient estimate `g z` as one array per tensor (for benchmarks and tests: this
 * materializes what a step never does).
 */
export function mezoGradientEstimate(
  seed: number,
  projectedGrad: number,
  sizes: number[],
): Float32Array[] {
  return sizes.map((n, t) => {
    const z = new Float32Array(n);
    fillNormalStream(z, seed, t, 0);
    for (let i = 0; i < n; i++) z[i] *= projectedGrad;
    return z;
  });
}

/**
 * Cosine similarity between the MeZO estimate `g z` of a step and a reference gradient (one
 * array per tensor, in `params` order), streamed chunk by chunk. It is ±cos(z, ∇): the sign of
 * g decides whether the estimate points along or against the reference.
 */
export function mezoCosine(
  seed: number,
  projectedGrad: number,
  reference: ArrayLike<number>[],
): number {
  const z = new Float32Array(MEZO_CHUNK);
  let dot = 0, zz = 0, rr = 0;
  reference.forEach((r, t) => {
    for (let off = 0; off < r.length; off += MEZO_CHUNK) {
      const len = Math.min(MEZO_CHUNK, r.length - off);
      const chunk = z.subarray(0, len);
      fillNormalStream(chunk, seed, t, off);
      for (let i = 0; i < len; i++) {
        const ri = r[off + i];
        dot += chunk[i] * ri;
        zz += chunk[i] * chunk[i];
        rr += ri * ri;
      }
    }
  });
  if (zz === 0 || rr === 0 || projectedGrad === 0) return 0;
  return Math.sign(projectedGrad) * dot / Math.sqrt(zz * rr);
}
