// Embedding lookup over an f32 table and its backward (see src/kernels/abi.ts). Token ids are
// checked against the vocabulary by the TS caller (the ABI carries no vocabulary size).

/** out[T,D] = table[ids[t]]. */
export function embeddingGather(out: usize, ids: usize, table: usize, T: i32, D: i32): void {
  const rowBytes = <usize>D << 2;
  for (let t = 0; t < T; t++) {
    const id = load<i32>(ids + (<usize>t << 2));
    memory.copy(out + <usize>t * rowBytes, table + <usize>id * rowBytes, rowBytes);
  }
}

/** dtable[ids[t]] += dout[t] for each t (duplicates accumulate, in order of t). */
export function embeddingScatterAdd(dtable: usize, ids: usize, dout: usize, T: i32, D: i32): void {
  const rowBytes = <usize>D << 2;
  for (let t = 0; t < T; t++) {
    const id = load<i32>(ids + (<usize>t << 2));
    const dst = dtable + <usize>id * rowBytes;
    const src = dout + <usize>t * rowBytes;
    let i = 0;
    for (; i + 4 <= D; i += 4) {
      const o = <usize>i << 2;
      v128.store(dst + o, f32x4.add(v128.load(dst + o), v128.load(src + o)));
    }
    for (; i < D; i++) {
      const o = <usize>i << 2;
      store<f32>(dst + o, load<f32>(dst + o) + load<f32>(src + o));
    }
  }
}
