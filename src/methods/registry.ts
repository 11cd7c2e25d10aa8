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
import { fullGradients, fullStepBytes } from "./full.ts";
import type { GradientMethod } from "./gradient.ts";
import type { CheckpointSpill } from "./block_checkpoints.ts";
import { lcsbGradients, type LcsbPattern, lcsbSelectedBlocks, lcsbStepBytes } from "./lcsb.ts";
import { mebpGradients, mebpKeeping, mebpStepBytes } from "./mebp.ts";
import { mespGradients, mespKeeping, mespStepBytes } from "./mesp.ts";
import { mezoStepBytes } from "./mezo.ts";
import type { StepParts } from "./step_plan.ts";

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

export type { StepParts } from "./step_plan.ts";

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
  /** Throws on settings of the method's own that cannot serve `numLayers` layers. */
  checkSettings?: (numLayers: number, settings: { lcsb?: LcsbSettings }) => void;
  /** Peak bytes of one step's activations, from its parts (lcsb: grouped as given). */
  planStep: (p: StepParts, lcsb?: LcsbSettings) => number;
}

/** The methods, by name. */
export const METHODS: Readonly<Record<MethodName, MethodSpec>> = {
  full: {
    gradient: "exact",
    tapes: "all",
    gradientMethod: () => fullGradients,
    planStep: fullStepBytes,
  },
  mebp: {
    gradient: "exact",
    tapes: "chosen",
    gradientMethod: (c) =>
      c.keptTapes || c.spill ? mebpKeeping(c.keptTapes, c.spill) : mebpGradients,
    planStep: mebpStepBytes,
  },
  mesp: {
    gradient: "exact",
    tapes: "chosen",
    gradientMethod: (c) =>
      c.keptTapes || c.spill ? mespKeeping(c.keptTapes, c.spill) : mespGradients,
    planStep: mespStepBytes,
  },
  lcsb: {
    gradient: "surrogate",
    tapes: "none",
    gradientMethod: (c) => {
      const { groups, pattern } = lcsbSettings(c.numLayers, c.lcsb);
      return lcsbGradients(lcsbSelectedBlocks(c.step, c.numLayers, groups, pattern), c.spill);
    },
    checkSettings: (numLayers, o) => void lcsbSettings(numLayers, o.lcsb),
    planStep: (p, lcsb) => {
      const { groups, pattern } = lcsbSettings(p.numLayers, lcsb);
      return lcsbStepBytes(p, groups, pattern);
    },
  },
  mezo: {
    gradient: "zeroth-order",
    tapes: "none",
    planStep: mezoStepBytes,
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
