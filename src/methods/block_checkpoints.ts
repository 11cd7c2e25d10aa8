/**
 * Where a step keeps the checkpointed block inputs of mebp, mesp and lcsb between the forward and
 * the backward: in the arena (`memory`: one `[N, D]` f32 buffer per checkpointed block), or with
 * a host-provided {@link CheckpointSpill} (a scratch file, say), which costs the arena ONE
 * `[N, D]` buffer: the backward loads each block's input into it just before that block's
 * backward, and needs only one at a time. The spill hands back the bytes it was given, so the
 * gradient is bit-identical either way.
 *
 * @example
 * ```ts
 * import { loadKernelsSync } from "../kernels/wasm.ts";
 * import { BlockCheckpoints, type CheckpointSpill } from "./block_checkpoints.ts";
 * const { arena } = loadKernelsSync({ variant: "reference" });
 * const held = new Map<number, Float32Array>();
 * const spill: CheckpointSpill = {
 *   save: (block, input) => Promise.resolve(void held.set(block, input.slice())),
 *   load: (block, into) => Promise.resolve(into.set(held.get(block)!)),
 * };
 * const x = arena.allocF32(4);
 * arena.f32(x, 4).set([1, 2, 3, 4]);
 * const checkpoints = new BlockCheckpoints(arena, 4, [0, 1], spill);
 * await checkpoints.save(1, x);
 * console.log(arena.f32(await checkpoints.load(1), 4)); // Float32Array [1, 2, 3, 4]
 * ```
 */
import type { Ptr } from "../runtime/ptr.ts";
import type { Arena } from "../runtime/arena.ts";

/**
 * Keeps block inputs outside the arena for one step at a time. `save(block, input)` stores a copy
 * of `input` (a view of the arena, valid only until the promise settles), replacing what an
 * earlier step stored for that block; `load(block, into)` writes the stored bytes of `block` into
 * `into` (same length). Every call is awaited before the next, and before the arena is touched.
 */
export interface CheckpointSpill {
  save(block: number, input: Float32Array): Promise<void>;
  load(block: number, into: Float32Array): Promise<void>;
}

/**
 * How a session keeps the block checkpoints: `"memory"` (the default: in the arena), or a
 * {@link CheckpointSpill} the host provides.
 */
export type CheckpointsOption = "memory" | CheckpointSpill;

/** The plan's name for a {@link CheckpointsOption}: `memory`, or `spill` for any spill. */
export type CheckpointsKind = "memory" | "spill";

/** The {@link CheckpointsKind} of `option` (absent: `memory`). */
export function checkpointsKind(option: CheckpointsOption | undefined): CheckpointsKind {
  return option === undefined || option === "memory" ? "memory" : "spill";
}

/**
 * Arena bytes that `count` checkpointed blocks of `bufferBytes` each cost (`bufferBytes` already
 * aligned): one buffer each in memory; one in all, or none for no block, with a spill.
 */
export function checkpointBytes(kind: CheckpointsKind, count: number, bufferBytes: number): number {
  if (kind === "memory") return count * bufferBytes;
  return count > 0 ? bufferBytes : 0;
}

/**
 * The checkpoints of one step: allocated on the arena top at construction (so they sit below
 * everything the step allocates later, as the memory plan counts them), released with the step.
 */
export class BlockCheckpoints {
  readonly #arena: Arena;
  readonly #length: number;
  readonly #spill: CheckpointSpill | null;
  /** memory: each block's own buffer; spill: every block maps to the one shared buffer. */
  readonly #buffers = new Map<number, Ptr>();

  /** Buffers for `blocks` of `length` floats each (`spill`: one, shared). */
  constructor(arena: Arena, length: number, blocks: readonly number[], spill?: CheckpointSpill) {
    this.#arena = arena;
    this.#length = length;
    this.#spill = spill ?? null;
    const shared = spill && blocks.length > 0 ? arena.allocF32(length) : 0;
    for (const i of blocks) this.#buffers.set(i, spill ? shared : arena.allocF32(length));
  }

  /** Whether block `i` is checkpointed. */
  has(i: number): boolean {
    return this.#buffers.has(i);
  }

  /** Keeps a copy of `input` (`length` floats at that address) as block `i`'s input. */
  async save(i: number, input: Ptr): Promise<void> {
    const buffer = this.#buffer(i);
    const view = this.#arena.f32(input, this.#length);
    if (this.#spill) await this.#spill.save(i, view);
    else this.#arena.f32(buffer, this.#length).set(view);
  }

  /** The address of block `i`'s input, loaded there first with a spill; valid until the next load. */
  async load(i: number): Promise<Ptr> {
    const buffer = this.#buffer(i);
    if (this.#spill) await this.#spill.load(i, this.#arena.f32(buffer, this.#length));
    return buffer;
  }

  #buffer(i: number): Ptr {
    const buffer = this.#buffers.get(i);
    if (buffer === undefined) throw new RangeError(`block ${i} is not checkpointed`);
    return buffer;
  }
}
