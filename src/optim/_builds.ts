/**
 * Kernel builds the optimizer and MeZO tests run on: the TS reference always, and each wasm build
 * whose module already exports every kernel those tests need (tests for a build that lacks them
 * are registered as ignored, so the summary shows them).
 */
import type { Kernels } from "../kernels/abi.ts";
import { type KernelBuild, referenceBuild, wasmBuild } from "../kernels/_testing.ts";

/** The kernels src/optim and src/methods/mezo.ts call. */
export const OPTIM_KERNELS = [
  "sgdStep",
  "adamwStep",
  "sumSquares",
  "scale",
  "axpy",
] as const satisfies readonly (keyof Kernels)[];

/** A build factory (fresh memory per call) and whether this checkout's wasm can serve it. */
export interface BuildCase {
  name: KernelBuild["name"];
  available: boolean;
  make: () => KernelBuild;
}

function wasmHas(variant: "simd" | "relaxed"): boolean {
  try {
    const b = wasmBuild(variant);
    for (const k of OPTIM_KERNELS) void b.kernels[k];
    return true;
  } catch {
    return false;
  }
}

/** Reference plus both wasm builds. */
export function buildCases(): BuildCase[] {
  return [
    { name: "reference", available: true, make: referenceBuild },
    { name: "simd", available: wasmHas("simd"), make: () => wasmBuild("simd") },
    { name: "relaxed", available: wasmHas("relaxed"), make: () => wasmBuild("relaxed") },
  ];
}
