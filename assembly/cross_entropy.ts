// Fused cross-entropy over vocabulary chunks (see src/kernels/abi.ts): an online log-sum-exp in
// the forward, softmax minus one-hot in the backward. The chunk's sum of exponentials is
// accumulated in f64 (a chunk may hold tens of thousands of terms).
import { addF64, expf, expv, hmax, hsumF64 } from "./vecmath";

/** Updates rowMax/rowSum (online log-sum-exp) and picks targetLogit for rows whose target is here. */
export function ceChunkForward(
  logits: usize, T: i32, Vc: i32, v0: i32, targets: usize, rowMax: usize, rowSum: usize, targetLogit: usize,
): void {
  const rowBytes = <usize>Vc << 2;
  for (let t = 0; t < T; t++) {
    const target = load<i32>(targets + (<usize>t << 2));
    if (target < 0) continue;
    const row = logits + <usize>t * rowBytes;
    let mv = f32x4.splat(-Infinity);
    let j = 0;
    for (; j + 4 <= Vc; j += 4) mv = f32x4.max(mv, v128.load(row + (<usize>j << 2)));
    let cmax = hmax(mv);
    for (; j < Vc; j++) cmax = max<f32>(cmax, load<f32>(row + (<usize>j << 2)));
    const oldMax = load<f32>(rowMax + (<usize>t << 2));
    const newMax = max<f32>(oldMax, cmax);
    // Every logit so far is -Infinity: nothing to add (and -Inf - -Inf would be NaN).
    if (newMax == -Infinity) continue;
    const nm = f32x4.splat(newMax);
    let acc = f64x2.splat(0);
    j = 0;
    for (; j + 4 <= Vc; j += 4) acc = addF64(acc, expv(f32x4.sub(v128.load(row + (<usize>j << 2)), nm)));
    let sum = hsumF64(acc);
    for (; j < Vc; j++) sum += <f64>expf(load<f32>(row + (<usize>j << 2)) - newMax);
    const old = <f64>load<f32>(rowSum + (<usize>t << 2));
    const rescaled = oldMax == -Infinity ? 0.0 : old * Math.exp(<f64>oldMax - <f64>newMax);
    store<f32>(rowSum + (<usize>t << 2), <f32>(rescaled + sum));
    store<f32>(rowMax + (<usize>t << 2), newMax);
    if (target >= v0 && target - v0 < Vc) {
      store<f32>(targetLogit + (<usize>t << 2), load<f32>(row + (<usize>(target - v0) << 2)));
    }
  }
}

/** logits[t, j] -> rowScale * (exp(logits[t,j] - lse[t]) - [v0+j == targets[t]]); ignored rows -> 0. */
export function ceChunkBackward(
  logits: usize, T: i32, Vc: i32, v0: i32, targets: usize, lse: usize, rowScale: f32,
): void {
  const rowBytes = <usize>Vc << 2;
  const sv = f32x4.splat(rowScale);
  for (let t = 0; t < T; t++) {
    const target = load<i32>(targets + (<usize>t << 2));
    const row = logits + <usize>t * rowBytes;
    if (target < 0) {
      memory.fill(row, 0, rowBytes);
      continue;
    }
    const l = load<f32>(lse + (<usize>t << 2));
    const hit = target >= v0 && target - v0 < Vc;
    const hitPtr = row + (<usize>(target - v0) << 2);
    const hitLogit: f32 = hit ? load<f32>(hitPtr) : 0;
    const lv = f32x4.splat(l);
    let j = 0;
    for (; j + 4 <= Vc; j += 4) {
      const p = row + (<usize>j << 2);
      v128.store(p, f32x4.mul(sv, expv(f32x4.sub(v128.load(p), lv))));
    }
    for (; j < Vc; j++) {
      const p = row + (<usize>j << 2);
      store<f32>(p, rowScale * expf(load<f32>(p) - l));
    }
    if (hit) store<f32>(hitPtr, rowScale * (expf(hitLogit - l) - 1.0));
  }
}
