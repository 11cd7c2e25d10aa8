import type { Kernels } from "../abi.ts";
import type { MemViews } from "./views.ts";

// Placeholder until the family is written: every entry throws.
export function crossEntropyReference(
  _m: MemViews,
): Pick<Kernels, "ceChunkForward" | "ceChunkBackward"> {
  const todo = (name: string) => () => {
    throw new Error(`reference kernel ${name} not written yet`);
  };
  return {
    ceChunkForward: todo("ceChunkForward"),
    ceChunkBackward: todo("ceChunkBackward"),
  };
}
