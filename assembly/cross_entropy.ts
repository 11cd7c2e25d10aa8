// Fused cross-entropy over vocabulary chunks (see src/kernels/abi.ts): an online log-sum-exp in
// the forward, softmax minus one-hot in the backward. The chunk's sum of exponentials is
// accumulated in f64 (a chunk may hold tens of thousands of terms).
import { addF64, expConst, expf, expvWith, hmax, hsumF64 } from "./vecmath";

/** Updates rowMax/rowSum (online log-sum-exp) and picks targetLogit for rows whose target is here. */
export function ceChunkForward(
  logits: usize, T: i32, Vc: i32, v0: i32, targets: usize, rowMax: usize, rowSum: usize, targetLogit: usize,
): void {
  // The exp constants, loaded once (see expvWith).
  const k0 = expConst(0), k1 = expConst(1), k2 = expConst(2), k3 = expConst(3), k4 = expConst(4);
  const k5 = expConst(5), k6 = expConst(6), k7 = expConst(7), k8 = expConst(8), k9 = expConst(9);
  const k10 = expConst(10), k11 = expConst(11), k12 = expConst(12);
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
    for (; j + 4 <= Vc; j += 4) acc = addF64(acc, expvWith(f32x4.sub(v128.load(row + (<usize>j << 2)), nm), k0, k1, k2, k3, k4, k5, k6, k7, k8, k9, k10, k11, k12));
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
  // The exp constants, loaded once (see expvWith).
  const k0 = expConst(0), k1 = expConst(1), k2 = expConst(2), k3 = expConst(3), k4 = expConst(4);
  const k5 = expConst(5), k6 = expConst(6), k7 = expConst(7), k8 = expConst(8), k9 = expConst(9);
  const k10 = expConst(10), k11 = expConst(11), k12 = expConst(12);
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
      v128.store(p, f32x4.mul(sv, expvWith(f32x4.sub(v128.load(p), lv), k0, k1, k2, k3, k4, k5, k6, k7, k8, k9, k10, k11, k12)));
    }
    for (; j < Vc; j++) {
      const p = row + (<usize>j << 2);
      store<f32>(p, rowScale * expf(load<f32>(p) - l));
    }
    if (hit) store<f32>(hitPtr, rowScale * (expf(hitLogit - l) - 1.0));
  }
}
