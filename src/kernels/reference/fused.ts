/**
 * Reference implementations of the fused-epilogue kernels: by definition the unfused kernels
 * they stand for, run one after the other.
 */
import type { Kernels } from "../abi.ts";
import type { Ptr } from "../../runtime/ptr.ts";

type Unfused = Pick<Kernels, "matmulABt" | "int4MatmulXWt" | "addBias" | "add">;

/** The fused kernels as the product followed by `addBias` or `add`. */
export function fusedReference(
  k: Unfused,
): Pick<Kernels, "matmulABtBias" | "int4MatmulXWtBias" | "matmulABtResidual"> {
  return {
    matmulABtResidual(out: Ptr, res: Ptr, a: Ptr, b: Ptr, M, N, K, alpha, acc, into) {
      k.matmulABt(out, a, b, M, N, K, alpha, acc);
      if (into) k.add(res, res, out, M * N);
      else k.add(out, out, res, M * N);
    },
    matmulABtBias(out: Ptr, a: Ptr, b: Ptr, bias: Ptr, M, N, K) {
      k.matmulABt(out, a, b, M, N, K, 1, 0);
      k.addBias(out, bias, M, N);
    },
    int4MatmulXWtBias(out: Ptr, x: Ptr, q: Ptr, scales: Ptr, biases: Ptr, bias: Ptr, M, N, K, g) {
      k.int4MatmulXWt(out, x, q, scales, biases, M, N, K, g, 1, 0);
      k.addBias(out, bias, M, N);
    },
  };
}
