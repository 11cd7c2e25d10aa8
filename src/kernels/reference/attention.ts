import type { Kernels } from "../abi.ts";
import type { MemViews } from "./views.ts";

// Placeholder until the family is written: every entry throws.
export function attentionReference(
  _m: MemViews,
): Pick<Kernels, "attentionForward" | "attentionBackward"> {
  const todo = (name: string) => () => {
    throw new Error(`reference kernel ${name} not written yet`);
  };
  return {
    attentionForward: todo("attentionForward"),
    attentionBackward: todo("attentionBackward"),
  };
}
