/**
 * The training methods by name (docs/design.md, "Training methods"): for each, what its step
 * computes, which tapes it keeps, how it gets a step's gradient, and the peak of a step's
 * activations in the memory plan. `MethodName`, the session's dispatch, the planner, and the CLI's
 * `--method` choices and their defaults all read this table.
 *
 * @example
 * ```ts
 * import { METHOD_NAMES, METHODS } from "./registry.ts";
 * for (const name of METHOD_NAMES) console.log(name, METHODS[name].gradient);
 * // full exact, mebp exact, mesp exact, lcsb surrogate, mezo zeroth-order
 * ```
 */
import { fullGradients } from "./full.ts";
import type { GradientMethod } from "./gradient.ts";
import {
  checkpointBytes,
  type CheckpointsKind,
  type CheckpointSpill,
} from "./block_checkpoints.ts";
import { lcsbGradients, type LcsbPattern, lcsbSelectedBlocks } from "./lcsb.ts";
import { mebpGradients, mebpKeeping } from "./mebp.ts";
import { mespGradients, mespKeeping } from "./mesp.ts";

/** Every method's name, in the order the docs and `--help` list them. */
export const METHOD_NAMES = ["full", "mebp", "mesp", "lcsb", "mezo"] as const;

/** A training method's name. */
export type MethodName = typeof METHOD_NAMES[number];

/** The method a run uses when none is named. */
export const DEFAULT_METHOD: MethodName = "mesp";

/** How lcsb groups the layers: how many groups, and which blocks form one. */
export interface LcsbSettings {
  groups: number;
  pattern: LcsbPattern;
}

/** The ways lcsb can group layers. */
export const LCSB_PATTERNS: readonly LcsbPattern[] = ["contiguous", "strided"];

/** The defaults of the methods' own settings (lcsb's grouping, MeZO's perturbation scale). */
export const METHOD_DEFAULTS = {
  lcsb: { groups: 4, pattern: "contiguous" as LcsbPattern },
  mezo: { eps: 1e-2 },
} as const;

/** lcsb's grouping for `numLayers` layers: `given`, or the default groups capped at the layers. */
export function lcsbSettings(numLayers: number, given?: LcsbSettings): LcsbSettings {
  const groups = given?.groups ?? Math.min(METHOD_DEFAULTS.lcsb.groups, numLayers);
  const pattern = given?.pattern ?? METHOD_DEFAULTS.lcsb.pattern;
  lcsbSelectedBlocks(0, numLayers, groups, pattern); // throws on a bad group count
  return { groups, pattern };
}

/** What a step's gradient depends on beyond its batch. */
export interface StepContext {
  /** Steps taken before this one (lcsb's group schedule counts them). */
  step: number;
  numLayers: number;
  /** Blocks, from the top, whose tapes the forward keeps (mebp, mesp). */
  keptTapes: number;
  lcsb?: LcsbSettings;
  /** Where the block checkpoints go instead of the arena (absent: the arena). */
  spill?: CheckpointSpill;
}

/**
 * Bytes of the parts of a step that `planMemory` sizes from the shapes, and that a method's
 * step combines: see `methods/memory_plan.ts` for what each holds.
 */
export interface StepParts {
  /** One `[N, D]` f32 buffer: the residual stream, or one checkpointed block input. */
  residual: number;
  /** One block's tape, without its input. */
  tape: number;
  /** The tape backward's temporaries. */
  tapeBackward: number;
  /** The structured (MeSP) block backward's peak. */
  structuredBackward: number;
  /** The lean forward of a block that keeps nothing. */
  leanForward: number;
  /** The LM head and loss, forward only. */
  headForward: number;
  /** The LM head and loss with their backward. */
  headBackward: number;
  numLayers: number;
  /** Blocks whose tapes the step keeps (see {@link MethodSpec.tapes}). */
  keptTapes: number;
  /** lcsb's grouping as given (defaults: {@link lcsbSettings}). */
  lcsb?: LcsbSettings;
  /** Where the block checkpoints are kept: `memory` (absent) or a spill (one `residual` in all). */
  checkpoints?: CheckpointsKind;
}

/** One training method. */
export interface MethodSpec {
  /** What a step computes: the exact gradient, a surrogate, or a zeroth-order estimate. */
  gradient: "exact" | "surrogate" | "zeroth-order";
  /** Which blocks' tapes a step keeps from the forward: every one, the top `keptTapes`, none. */
  tapes: "all" | "chosen" | "none";
  /**
   * The gradient computation of one step. Absent for a method without gradients: its step
   * perturbs and updates the parameters itself (MeZO), with no optimizer state.
   */
  gradientMethod?: (c: StepContext) => GradientMethod;
  /** Peak bytes of one step's activations, from its parts. */
  planStep: (p: StepParts) => number;
}

/**
 * mebp, mesp: the checkpoints of the blocks below the kept ones; their lean forward runs before
 * any tape exists, their backward (`blockBackward` bytes) after every tape is freed. The kept
 * blocks hold an input copy and a tape each, with the head (or the top tape's backward) on top.
 */
function checkpointedStep(p: StepParts, blockBackward: number): number {
  const { residual, numLayers: L, keptTapes: K } = p;
  const kept = K > 0
    ? K * (residual + p.tape) + Math.max(p.headBackward, p.tapeBackward)
    : p.headBackward;
  const below = K < L ? Math.max(p.leanForward, blockBackward) : 0;
  return residual + checkpoints(p, L - K) + Math.max(kept, below);
}

/** Arena bytes of `count` checkpointed block inputs (see `block_checkpoints.ts`). */
function checkpoints(p: StepParts, count: number): number {
  return checkpointBytes(p.checkpoints ?? "memory", count, p.residual);
}

/** The methods, by name. */
export const METHODS: Readonly<Record<MethodName, MethodSpec>> = {
  full: {
    gradient: "exact",
    tapes: "all",
    gradientMethod: () => fullGradients,
    // One [N, D] residual buffer, which the head's dx turns into dy, and every block's tape.
    planStep: (p) =>
      p.residual + p.numLayers * (p.residual + p.tape) + Math.max(p.headBackward, p.tapeBackward),
  },
  mebp: {
    gradient: "exact",
    tapes: "chosen",
    gradientMethod: (c) =>
      c.keptTapes || c.spill ? mebpKeeping(c.keptTapes, c.spill) : mebpGradients,
    planStep: (p) => checkpointedStep(p, p.tape + p.tapeBackward),
  },
  mesp: {
    gradient: "exact",
    tapes: "chosen",
    gradientMethod: (c) =>
      c.keptTapes || c.spill ? mespKeeping(c.keptTapes, c.spill) : mespGradients,
    planStep: (p) => checkpointedStep(p, p.structuredBackward),
  },
  lcsb: {
    gradient: "surrogate",
    tapes: "none",
    gradientMethod: (c) => {
      const { groups, pattern } = lcsbSettings(c.numLayers, c.lcsb);
      return lcsbGradients(lcsbSelectedBlocks(c.step, c.numLayers, groups, pattern), c.spill);
    },
    // The checkpoints of the largest group.
    planStep: (p) => {
      const { groups, pattern } = lcsbSettings(p.numLayers, p.lcsb);
      let most = 0;
      for (let g = 0; g < groups; g++) {
        most = Math.max(most, lcsbSelectedBlocks(g, p.numLayers, groups, pattern).length);
      }
      return p.residual + checkpoints(p, most) +
        Math.max(p.leanForward, p.headBackward, p.structuredBackward);
    },
  },
  mezo: {
    gradient: "zeroth-order",
    tapes: "none",
    planStep: (p) => p.residual + Math.max(p.leanForward, p.headForward),
  },
};

/** Whether `method`'s step computes gradients (and so has gradient storage and an optimizer). */
export function hasGradients(method: MethodName): boolean {
  return METHODS[method].gradientMethod !== undefined;
}

/**
 * Whether `method` checkpoints block inputs between its forward and backward (mebp, mesp, lcsb),
 * so where they are kept (`checkpoints`) matters; full keeps tapes, mezo has no backward.
 */
export function checkpointsBlocks(method: MethodName): boolean {
  return hasGradients(method) && METHODS[method].tapes !== "all";
}
