/**
 * Plain TypeScript implementation of every kernel in the ABI: the yardstick the wasm kernels are
 * tested against, and a fallback that runs anywhere. Written for clarity, not speed.
 */
import type { Kernels } from "../abi.ts";
import { MemViews } from "./views.ts";
import { gemmReference } from "./gemm.ts";
import { int4Reference } from "./int4.ts";
import { normReference } from "./norm.ts";
import { ropeReference } from "./rope.ts";
import { swigluReference } from "./swiglu.ts";
import { gegluReference } from "./geglu.ts";
import { attentionReference } from "./attention.ts";
import { embeddingReference } from "./embedding.ts";
import { crossEntropyReference } from "./cross_entropy.ts";
import { elementwiseReference } from "./elementwise.ts";
import { optimReference } from "./optim.ts";
import { fusedReference } from "./fused.ts";

/** Reference kernels over `memory`. The arena may start at `heapBase()` = 1024. */
export function createReferenceKernels(memory: WebAssembly.Memory): Kernels {
  const m = new MemViews(memory);
  const unfused = { ...gemmReference(m), ...int4Reference(m), ...elementwiseReference(m) };
  return {
    heapBase: () => 1024,
    scratchBytes: () => 0,
    init: () => {},
    ...gemmReference(m),
    ...int4Reference(m),
    ...normReference(m),
    ...ropeReference(m),
    ...swigluReference(m),
    ...gegluReference(m),
    ...attentionReference(m),
    ...embeddingReference(m),
    ...crossEntropyReference(m),
    ...elementwiseReference(m),
    ...optimReference(m),
    ...fusedReference(unfused),
  };
}
