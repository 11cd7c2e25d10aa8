import type { Kernels } from "../abi.ts";
import type { MemViews } from "./views.ts";

// Placeholder until the family is written: every entry throws.
export function gemmReference(_m: MemViews): Pick<Kernels, "matmulABt" | "matmulAB" | "matmulAtB"> {
  const todo = (name: string) => () => {
    throw new Error(`reference kernel ${name} not written yet`);
  };
  return {
    matmulABt: todo("matmulABt"),
    matmulAB: todo("matmulAB"),
    matmulAtB: todo("matmulAtB"),
  };
}
