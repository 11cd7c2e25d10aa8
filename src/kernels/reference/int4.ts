import type { Kernels } from "../abi.ts";
import type { MemViews } from "./views.ts";

// Placeholder until the family is written: every entry throws.
export function int4Reference(
  _m: MemViews,
): Pick<
  Kernels,
  "int4Quantize" | "int4Dequantize" | "int4MatmulXWt" | "int4MatmulGW" | "int4GatherRows"
> {
  const todo = (name: string) => () => {
    throw new Error(`reference kernel ${name} not written yet`);
  };
  return {
    int4Quantize: todo("int4Quantize"),
    int4Dequantize: todo("int4Dequantize"),
    int4MatmulXWt: todo("int4MatmulXWt"),
    int4MatmulGW: todo("int4MatmulGW"),
    int4GatherRows: todo("int4GatherRows"),
  };
}
