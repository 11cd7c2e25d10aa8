/** What the kernel benchmark tables share: a build to time on, and one row of a table. */
import type { Kernels } from "../src/kernels/abi.ts";
import type { Arena } from "../src/runtime/arena.ts";

/** A kernel build with its arena: what a row's setup gets. */
export interface BenchBuild {
  variant: "simd" | "relaxed";
  /** What the table calls it: the variant, or `variant (baseline)` for a --baseline module. */
  label: string;
  kernels: Kernels;
  arena: Arena;
  /** Whether the module exports this kernel (families may still be missing). */
  has(name: keyof Kernels): boolean;
}

/** One benchmark row. */
export interface BenchRow {
  kernel: string;
  shape: string;
  /** Useful flops of one call (2·M·N·K for a matmul); 0 prints no GFLOP/s. */
  flops: number;
  /** Kernels the row needs; the row is skipped on a build that lacks any. */
  needs: (keyof Kernels)[];
  /** Allocates inputs (random) and returns the call to time. */
  setup(build: BenchBuild): () => void;
}
