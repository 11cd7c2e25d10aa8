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
 * Exact restore. In f32, `θ + εz - 2εz + εz` is not θ in general (each addition rounds), and the
 * drift accumulates over thousands of steps. Instead θ is copied once per step into a backup
 * buffer (4 bytes per TRAINABLE parameter: the LoRA adapters, e.g. 17.6 MB for Qwen2.5-0.5B at
 * rank 8, never the base weights), `θ+` and `θ-` are both computed from that exact copy, and θ is
 * restored by copying it back. So with `lr = 0` a step leaves θ bit-identical, and z still exists
 * only one chunk at a time.
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
import type { Kernels, Ptr } from "../kernels/abi.ts";
import type { Arena } from "../runtime/arena.ts";
import { fillNormalStream } from "../runtime/philox.ts";
import type { ParamTensor } from "../optim/optimizer.ts";

/** Floats of z generated at a time (a multiple of 4, the Philox block). */
export const MEZO_CHUNK = 4096;

/** Arena buffers one MeZO step needs: the θ backup and one z chunk. */
export interface MezoWorkspace {
  /** Backup of every parameter tensor, packed in `params` order. */
  backup: Ptr;
  /** One chunk of z (`MEZO_CHUNK` floats). */
  z: Ptr;
  /** Total floats in `backup`. */
  backupFloats: number;
  /** Bytes of linear memory the workspace holds. */
  bytes: number;
}

/** Allocates a workspace for `params` once (reuse it every step so steps never allocate). */
export function createMezoWorkspace(arena: Arena, params: ParamTensor[]): MezoWorkspace {
  const backupFloats = params.reduce((s, p) => s + p.n, 0);
  const before = arena.mark();
  const backup = arena.allocF32(backupFloats);
  const z = arena.allocF32(MEZO_CHUNK);
  return { backup, z, backupFloats, bytes: arena.mark() - before };
}

/** Arguments of {@link mezoStep}. */
export interface MezoStepOptions {
  kernels: Kernels;
  arena: Arena;
  /** Trainable tensors; their position in this array is the tensor index keying z. */
  params: ParamTensor[];
  /** Loss at the current parameter values (a forward pass). Called twice per step. */
  loss: () => Promise<number>;
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

/**
 * One MeZO step (see the module doc). If the projected gradient is not finite (a loss was NaN or
 * infinite), θ is restored and left un-updated; the result reports the non-finite value.
 */
export async function mezoStep(o: MezoStepOptions): Promise<MezoStepResult> {
  const { kernels, arena, params } = o;
  if (!(o.eps > 0)) throw new RangeError(`MeZO eps must be > 0, got ${o.eps}`);
  const ownMark = o.workspace ? -1 : arena.mark();
  const ws = o.workspace ?? createMezoWorkspace(arena, params);
  const total = params.reduce((s, p) => s + p.n, 0);
  if (total > ws.backupFloats) {
    throw new Error(`MeZO workspace holds ${ws.backupFloats} floats, params need ${total}`);
  }
  const topAfterWorkspace = arena.mark();

  copyParams(arena, params, ws.backup, "save");
  let lossPlus: number, lossMinus: number;
  try {
    perturb(kernels, arena, params, ws, o.seed, o.eps);
    lossPlus = await o.loss();
    copyParams(arena, params, ws.backup, "restore");
    perturb(kernels, arena, params, ws, o.seed, -o.eps);
    lossMinus = await o.loss();
    copyParams(arena, params, ws.backup, "restore");
  } catch (e) {
    // θ must never be left perturbed, also when loss() throws.
    copyParams(arena, params, ws.backup, "restore");
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
    forEachChunk(arena, params, ws, o.seed, (pPtr, zPtr, len) => {
      kernels.scale(zPtr, projectedGrad, len);
      kernels.sgdStep(pPtr, zPtr, len, o.lr, o.weightDecay);
    });
  }

  if (ownMark >= 0) arena.release(ownMark);
  return { lossPlus, lossMinus, projectedGrad, loss: (lossPlus + lossMinus) / 2 };
}

/** Copies every tensor into (`save`) or out of (`restore`) the packed backup. */
function copyParams(arena: Arena, params: ParamTensor[], backup: Ptr, dir: "save" | "restore") {
  const bytes = new Uint8Array(arena.memory.buffer); // fresh: loss() may have grown the memory
  let at = backup;
  for (const p of params) {
    const len = p.n * 4;
    if (dir === "save") bytes.copyWithin(at, p.ptr, p.ptr + len);
    else bytes.copyWithin(p.ptr, at, at + len);
    at += len;
  }
}

/** θ += scale · z, one chunk of z at a time. */
function perturb(
  kernels: Kernels,
  arena: Arena,
  params: ParamTensor[],
  ws: MezoWorkspace,
  seed: number,
  scale: number,
) {
  forEachChunk(arena, params, ws, seed, (pPtr, zPtr, len) => kernels.axpy(pPtr, zPtr, scale, len));
}

/** Regenerates z chunk by chunk into `ws.z` and hands each chunk with its parameter slice. */
function forEachChunk(
  arena: Arena,
  params: ParamTensor[],
  ws: MezoWorkspace,
  seed: number,
  fn: (paramPtr: Ptr, zPtr: Ptr, len: number) => void,
) {
  params.forEach((p, t) => {
    for (let off = 0; off < p.n; off += MEZO_CHUNK) {
      const len = Math.min(MEZO_CHUNK, p.n - off);
      fillNormalStream(arena.f32(ws.z, len), seed, t, off);
      fn(p.ptr + off * 4, ws.z, len);
    }
  });
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
