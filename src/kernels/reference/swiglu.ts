import type { Kernels } from "../abi.ts";
import type { MemViews } from "./views.ts";

// Placeholder until the family is written: every entry throws.
export function swigluReference(_m: MemViews): Pick<Kernels, "swigluForward" | "swigluBackward"> {
  const todo = (name: string) => () => {
    throw new Error(`reference kernel ${name} not written yet`);
  };
  return {
    swigluForward: todo("swigluForward"),
    swigluBackward: todo("swigluBackward"),
  };
}
