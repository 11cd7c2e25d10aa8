import type { Kernels } from "../abi.ts";
import type { MemViews } from "./views.ts";

// Placeholder until the family is written: every entry throws.
export function elementwiseReference(
  _m: MemViews,
): Pick<Kernels, "add" | "axpy" | "scale" | "addBias" | "sumSquares"> {
  const todo = (name: string) => () => {
    throw new Error(`reference kernel ${name} not written yet`);
  };
  return {
    add: todo("add"),
    axpy: todo("axpy"),
    scale: todo("scale"),
    addBias: todo("addBias"),
    sumSquares: todo("sumSquares"),
  };
}
