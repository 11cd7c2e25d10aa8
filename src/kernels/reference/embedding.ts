/** Reference embedding lookup over an f32 table and its backward (scatter-add). */
import type { Kernels } from "../abi.ts";
import type { MemViews } from "./views.ts";

/** Embedding kernels over linear memory. */
export function embeddingReference(
  m: MemViews,
): Pick<Kernels, "embeddingGather" | "embeddingScatterAdd"> {
  // The ABI carries no vocabulary size, so only negative ids can be caught here; callers check
  // ids against the vocabulary before handing them to any kernel.
  function checkedIds(ids: number, T: number): Int32Array {
    const v = m.i32(ids, T);
    for (let t = 0; t < T; t++) {
      if (v[t] < 0) {
        throw new RangeError(`embedding: token id ${v[t]} at position ${t} is negative`);
      }
    }
    return v;
  }
  return {
    embeddingGather(out, ids, table, T, D) {
      const idv = checkedIds(ids, T);
      const o = m.f32(out, T * D);
      for (let t = 0; t < T; t++) o.set(m.f32(table + idv[t] * D * 4, D), t * D);
    },
    embeddingScatterAdd(dtable, ids, dout, T, D) {
      const idv = checkedIds(ids, T);
      const g = m.f32(dout, T * D);
      for (let t = 0; t < T; t++) {
        const row = m.f32(dtable + idv[t] * D * 4, D);
        for (let i = 0; i < D; i++) row[i] += g[t * D + i];
      }
    },
  };
}
