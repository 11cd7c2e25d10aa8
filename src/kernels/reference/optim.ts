import type { Kernels } from "../abi.ts";
import type { MemViews } from "./views.ts";

// Placeholder until the family is written: every entry throws.
export function optimReference(_m: MemViews): Pick<Kernels, "sgdStep" | "adamwStep"> {
  const todo = (name: string) => () => {
    throw new Error(`reference kernel ${name} not written yet`);
  };
  return {
    sgdStep: todo("sgdStep"),
    adamwStep: todo("adamwStep"),
  };
}
