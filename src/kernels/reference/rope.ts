import type { Kernels } from "../abi.ts";
import type { MemViews } from "./views.ts";

// Placeholder until the family is written: every entry throws.
export function ropeReference(_m: MemViews): Pick<Kernels, "ropeApply"> {
  const todo = (name: string) => () => {
    throw new Error(`reference kernel ${name} not written yet`);
  };
  return {
    ropeApply: todo("ropeApply"),
  };
}
