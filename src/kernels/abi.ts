/**
 * The kernel ABI: every compute kernel slimtune runs, as one flat interface over a single
 * `WebAssembly.Memory`.
 *
 * Conventions (shared by the AssemblyScript build in `assembly/` and the plain TypeScript
 * reference in `src/kernels/reference/`):
 * - Every pointer (`Ptr`) is a BYTE offset into the kernels' linear memory, 16-byte aligned for
 *   f32 tensors and u32 weight arrays (the arena guarantees it). Shapes are element counts.
 * - All matrices are row-major and contiguous. Activations are f32; token ids / targets are i32.
 * - `acc` (0 | 1): 0 overwrites the output, 1 adds into it (`out += ...`). `alpha` multiplies
 *   the product before it is written or added.
 * - int4 weights use the MLX "affine" layout (docs/design.md, "Base weights in int4"): a weight `W [N, K]` (N outputs, K
 *   inputs) is `q: u32 [N, K/8]` (8 nibbles per u32, low nibble = lowest column), and per group of
 *   `groupSize` columns along K a `scale` and a `bias`, both f32 `[N, K/groupSize]`;
 *   `w = scale * q + bias`. `groupSize` is a multiple of 8 dividing K (64 by default; 32 and 128
 *   appear in MLX checkpoints). Kernels never materialize a whole f32 W.
 * - Kernels never allocate. Those that need temporary space (GEMM packing, attention rows) use
 *   the scratch region given once to `init`; `scratchBytes()` says how large it must be.
 * - Kernels must not read or write outside the tensors named in their arguments and the scratch.
 */

import type { Ptr } from "../runtime/ptr.ts";

/** Every kernel slimtune needs. Implemented by the wasm module and by the TS reference. */
export interface Kernels {
  // ---- set-up ---------------------------------------------------------------------------
  /** First byte the kernels' own static data does not use; the arena starts at or after it. */
  heapBase(): Ptr;
  /** Bytes of scratch the kernels need (a constant of the build). */
  scratchBytes(): number;
  /** Hands the kernels their scratch region: `scratchBytes()` bytes at `ptr`. */
  init(scratch: Ptr, bytes: number): void;

  // ---- f32 GEMM --------------------------------------------------------------------------
  /** out[M,N] (+)= alpha * a[M,K] · b[N,K]ᵀ   (activations times a weight stored [out, in]). */
  matmulABt(
    out: Ptr,
    a: Ptr,
    b: Ptr,
    M: number,
    N: number,
    K: number,
    alpha: number,
    acc: number,
  ): void;
  /**
   * out[M,N] = a[M,K] · b[N,K]ᵀ + bias[N]: the same bits as matmulABt (alpha 1, acc 0) followed
   * by addBias, with the bias added while each part of out is fresh (a fused epilogue).
   */
  matmulABtBias(out: Ptr, a: Ptr, b: Ptr, bias: Ptr, M: number, N: number, K: number): void;
  /**
   * matmulABt(out, a, b, M, N, K, alpha, acc) and then the residual add: `into` 0 adds
   * res[M,N] into out (the bits of add(out, out, res)), `into` 1 adds out into res (the bits of
   * add(res, res, out); out keeps the product). A fused epilogue: each part of out gets its add
   * while it is fresh.
   */
  matmulABtResidual(
    out: Ptr,
    res: Ptr,
    a: Ptr,
    b: Ptr,
    M: number,
    N: number,
    K: number,
    alpha: number,
    acc: number,
    into: number,
  ): void;
  /** out[M,N] (+)= alpha * a[M,K] · b[K,N]     (gradient times a weight: dx = g · W). */
  matmulAB(
    out: Ptr,
    a: Ptr,
    b: Ptr,
    M: number,
    N: number,
    K: number,
    alpha: number,
    acc: number,
  ): void;
  /** out[M,N] (+)= alpha * a[K,M]ᵀ · b[K,N]    (weight gradients: dW = gᵀ · x). */
  matmulAtB(
    out: Ptr,
    a: Ptr,
    b: Ptr,
    M: number,
    N: number,
    K: number,
    alpha: number,
    acc: number,
  ): void;

  // ---- int4 affine weights ---------------------------------------------------------------
  /** Quantizes f32 w[N,K] to q/scales/biases (min/max affine per group, round to nearest). */
  int4Quantize(
    q: Ptr,
    scales: Ptr,
    biases: Ptr,
    w: Ptr,
    N: number,
    K: number,
    groupSize: number,
  ): void;
  /** out[N,K] = dequantized W (tests and small tensors only). */
  int4Dequantize(
    out: Ptr,
    q: Ptr,
    scales: Ptr,
    biases: Ptr,
    N: number,
    K: number,
    groupSize: number,
  ): void;
  /** out[M,N] (+)= alpha * x[M,K] · Wᵀ, W [N,K] int4. Any M ≥ 1 (a GEMV path serves M ≤ 8). */
  int4MatmulXWt(
    out: Ptr,
    x: Ptr,
    q: Ptr,
    scales: Ptr,
    biases: Ptr,
    M: number,
    N: number,
    K: number,
    groupSize: number,
    alpha: number,
    acc: number,
  ): void;
  /**
   * out[M,N] = x[M,K] · Wᵀ + bias[N]: the same bits as int4MatmulXWt (alpha 1, acc 0) followed by
   * addBias, with the bias added while each part of out is fresh (a fused epilogue).
   */
  int4MatmulXWtBias(
    out: Ptr,
    x: Ptr,
    q: Ptr,
    scales: Ptr,
    biases: Ptr,
    bias: Ptr,
    M: number,
    N: number,
    K: number,
    groupSize: number,
  ): void;
  /** out[M,K] (+)= alpha * g[M,N] · W, W [N,K] int4 (input gradient of a quantized linear). */
  int4MatmulGW(
    out: Ptr,
    g: Ptr,
    q: Ptr,
    scales: Ptr,
    biases: Ptr,
    M: number,
    N: number,
    K: number,
    groupSize: number,
    alpha: number,
    acc: number,
  ): void;
  /** out[T,K] = rows ids[t] of int4 W [N,K] dequantized (embedding lookup from an int4 table). */
  int4GatherRows(
    out: Ptr,
    ids: Ptr,
    q: Ptr,
    scales: Ptr,
    biases: Ptr,
    T: number,
    K: number,
    groupSize: number,
  ): void;

  // ---- normalization ---------------------------------------------------------------------
  /**
   * out[T,D] = x * rstd * w, rstd[t] = 1/sqrt(mean(x[t]^2) + eps) (rstd saved for backward).
   * `out` may alias `x` (in place).
   */
  rmsnormForward(out: Ptr, rstd: Ptr, x: Ptr, w: Ptr, T: number, D: number, eps: number): void;
  /**
   * dx[T,D] (+)= input gradient of rmsnorm given dout, x, w and the saved rstd.
   * dw[D] += weight gradient when `dw` != 0 (slimtune freezes norms, so usually 0).
   * With `dw` = 0, `dx` may alias `dout` (in place).
   */
  rmsnormBackward(
    dx: Ptr,
    dw: Ptr,
    dout: Ptr,
    x: Ptr,
    w: Ptr,
    rstd: Ptr,
    T: number,
    D: number,
    acc: number,
  ): void;

  // ---- rotary position embedding ---------------------------------------------------------
  /**
   * In place on x[T, H*hd], "rotate_half" form: for each head and i < hd/2,
   * (x1, x2) = (x[i], x[i+hd/2]) -> (x1*c - x2*s, x2*c + x1*s), c = cos[t,i], s = sin[t,i]
   * (tables [T, hd/2], built in TS with theta and llama3 scaling). `inverse` = 1 rotates by -angle,
   * which is exactly the backward of the forward rotation.
   */
  ropeApply(x: Ptr, cos: Ptr, sin: Ptr, T: number, H: number, hd: number, inverse: number): void;

  // ---- SwiGLU ----------------------------------------------------------------------------
  /** out[n] = silu(gate[n]) * up[n], silu(z) = z * sigmoid(z). */
  swigluForward(out: Ptr, gate: Ptr, up: Ptr, n: number): void;
  /** dgate[n] = dout * up * silu'(gate), dup[n] = dout * silu(gate) (overwrites both). */
  swigluBackward(dgate: Ptr, dup: Ptr, dout: Ptr, gate: Ptr, up: Ptr, n: number): void;

  // ---- GeGLU (tanh GELU, Gemma) ---------------------------------------------------------
  /** out[n] = gelu_tanh(gate[n]) * up[n], gelu_tanh(z) = z/2 (1 + tanh(√(2/π)(z + 0.044715 z³))). */
  gegluTanhForward(out: Ptr, gate: Ptr, up: Ptr, n: number): void;
  /** dgate[n] = dout * up * gelu_tanh'(gate), dup[n] = dout * gelu_tanh(gate) (overwrites both). */
  gegluTanhBackward(dgate: Ptr, dup: Ptr, dout: Ptr, gate: Ptr, up: Ptr, n: number): void;

  // ---- attention -------------------------------------------------------------------------
  /**
   * Causal grouped-query attention for ONE sequence of T tokens.
   * q[T, Hq*hd], k/v[T, Hkv*hd]; query head h uses kv head floor(h / (Hq/Hkv)).
   * out[T, Hq*hd] = softmax(q kᵀ * scale + causal mask) v, with max-subtraction; with
   * `window` > 0 (sliding-window layers) query t sees only keys j with t - window < j <= t;
   * `window` 0 is full causal attention;
   * lse[Hq, T] = log-sum-exp of each scaled score row (saved so backward can rebuild the
   * probabilities without storing [Hq, T, T]).
   */
  attentionForward(
    out: Ptr,
    lse: Ptr,
    q: Ptr,
    k: Ptr,
    v: Ptr,
    T: number,
    Hq: number,
    Hkv: number,
    hd: number,
    scale: number,
    window: number,
  ): void;
  /**
   * Backward of attentionForward. dq (overwritten) [T,Hq*hd]; dk, dv (overwritten) [T,Hkv*hd],
   * each summing over the query heads that share the kv head. Needs q, k, v, out, lse, dout.
   */
  attentionBackward(
    dq: Ptr,
    dk: Ptr,
    dv: Ptr,
    dout: Ptr,
    q: Ptr,
    k: Ptr,
    v: Ptr,
    out: Ptr,
    lse: Ptr,
    T: number,
    Hq: number,
    Hkv: number,
    hd: number,
    scale: number,
    window: number,
  ): void;

  // ---- embedding (f32 table) -------------------------------------------------------------
  /** out[T,D] = table[ids[t]]. ids: i32 [T]. */
  embeddingGather(out: Ptr, ids: Ptr, table: Ptr, T: number, D: number): void;
  /** dtable[ids[t]] += dout[t] for each t (duplicates accumulate). */
  embeddingScatterAdd(dtable: Ptr, ids: Ptr, dout: Ptr, T: number, D: number): void;

  // ---- fused LM head + softmax + cross-entropy, one vocabulary chunk at a time -----------
  /**
   * Online log-sum-exp over a chunk of logits. logits[T, Vc] holds columns v0 .. v0+Vc-1 of the
   * full [T, V] logits. For each row t: rowMax[t], rowSum[t] (sum of exp(logit - rowMax)) are
   * updated in place (start them at -Infinity and 0); if v0 <= targets[t] < v0+Vc,
   * targetLogit[t] = logits[t, targets[t]-v0]. Rows with targets[t] < 0 (ignored) are skipped.
   */
  ceChunkForward(
    logits: Ptr,
    T: number,
    Vc: number,
    v0: number,
    targets: Ptr,
    rowMax: Ptr,
    rowSum: Ptr,
    targetLogit: Ptr,
  ): void;
  /**
   * In place: logits[t, j] -> rowScale * (exp(logits[t,j] - lse[t]) - [v0+j == targets[t]]),
   * i.e. d(loss)/d(logits) for this chunk; rows with targets[t] < 0 become 0.
   */
  ceChunkBackward(
    logits: Ptr,
    T: number,
    Vc: number,
    v0: number,
    targets: Ptr,
    lse: Ptr,
    rowScale: number,
  ): void;

  // ---- elementwise and reductions --------------------------------------------------------
  /** out[n] = a[n] + b[n] (out may alias a or b). */
  add(out: Ptr, a: Ptr, b: Ptr, n: number): void;
  /** y[n] += alpha * x[n]. */
  axpy(y: Ptr, x: Ptr, alpha: number, n: number): void;
  /** x[n] *= alpha. */
  scale(x: Ptr, alpha: number, n: number): void;
  /** out[T,N] += bias[N] broadcast over rows. */
  addBias(out: Ptr, bias: Ptr, T: number, N: number): void;
  /** Sum of squares of x[n], accumulated in f64 (gradient-norm clipping). */
  sumSquares(x: Ptr, n: number): number;

  // ---- optimizers ------------------------------------------------------------------------
  /** p -= lr * (g + wd * p). */
  sgdStep(p: Ptr, g: Ptr, n: number, lr: number, wd: number): void;
  /**
   * AdamW with decoupled weight decay: m = b1 m + (1-b1) g; v = b2 v + (1-b2) g²;
   * p -= lr * (wd * p + (m / bc1) / (sqrt(v / bc2) + eps)), bc1 = 1 - b1^t, bc2 = 1 - b2^t.
   */
  adamwStep(
    p: Ptr,
    g: Ptr,
    m: Ptr,
    v: Ptr,
    n: number,
    lr: number,
    b1: number,
    b2: number,
    eps: number,
    wd: number,
    bc1: number,
    bc2: number,
  ): void;
}

/** Names of every kernel, for loaders that bind exports and for tests that check coverage. */
export const KERNEL_NAMES = [
  "heapBase",
  "scratchBytes",
  "init",
  "matmulABt",
  "matmulABtBias",
  "matmulABtResidual",
  "matmulAB",
  "matmulAtB",
  "int4Quantize",
  "int4Dequantize",
  "int4MatmulXWt",
  "int4MatmulXWtBias",
  "int4MatmulGW",
  "int4GatherRows",
  "rmsnormForward",
  "rmsnormBackward",
  "ropeApply",
  "swigluForward",
  "swigluBackward",
  "gegluTanhForward",
  "gegluTanhBackward",
  "attentionForward",
  "attentionBackward",
  "embeddingGather",
  "embeddingScatterAdd",
  "ceChunkForward",
  "ceChunkBackward",
  "add",
  "axpy",
  "scale",
  "addBias",
  "sumSquares",
  "sgdStep",
  "adamwStep",
] as const satisfies readonly (keyof Kernels)[];
