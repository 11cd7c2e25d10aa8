import type { Kernels } from "../abi.ts";
import type { MemViews } from "./views.ts";

// Placeholder until the family is written: every entry throws.
export function embeddingReference(
  _m: MemViews,
): Pick<Kernels, "embeddingGather" | "embeddingScatterAdd"> {
  const todo = (name: string) => () => {
    throw new Error(`reference kernel ${name} not written yet`);
  };
  return {
    embeddingGather: todo("embeddingGather"),
    embeddingScatterAdd: todo("embeddingScatterAdd"),
  };
}
