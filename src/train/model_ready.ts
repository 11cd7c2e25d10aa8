/**
 * The lines a run prints once the model is loaded: what was loaded and how, and why it computes on
 * fewer threads than cores or leaves small calls on one thread.
 */
import type { LoadedKernels } from "../kernels/load.ts";
import type { WeightStore } from "../model/weights.ts";

/** What the model line reports about the weights, besides their config. */
export type ReadyStore = Pick<WeightStore, "config" | "quant">;

/** What the thread lines report about the kernels. */
export type ReadyKernels = Pick<
  LoadedKernels,
  "variant" | "threads" | "threadSpeedups" | "parallel"
>;

/**
 * The model line, then a line where measuring chose fewer threads than `asked`, then one for how
 * calls are split where there are threads. `weights`: where they live (resident or streamed).
 */
export function modelReadyLines(
  modelName: string,
  weights: string,
  store: ReadyStore,
  loaded: ReadyKernels,
  asked: number,
  readyMs: number,
): string[] {
  const config = store.config;
  const lines = [
    `model: ${modelName} (${config.architecture}, ` +
    `${config.numLayers} layers, hidden ${config.hiddenSize}, vocab ${config.vocabSize}), ` +
    `${store.quant} ${weights}, kernels ${loaded.variant} x ${loaded.threads} threads, ` +
    `ready in ${(readyMs / 1000).toFixed(1)} s`,
  ];
  if (loaded.threadSpeedups && loaded.threads < asked) {
    const s = loaded.threadSpeedups.map((x) => `${x.toFixed(2)}x`).join(", ");
    lines.push(
      `threads: ${loaded.threads} of ${asked} cores: more measured no faster (a GEMM on ` +
        `1..${loaded.threadSpeedups.length} threads: ${s}); --threads N to choose`,
    );
  }
  if (loaded.parallel) {
    const p = loaded.parallel;
    // Why a small model may not gain from threads: calls below this size stay on one thread.
    lines.push(
      `threads: calls from ${(p.minWork / 1e6).toFixed(2)}M multiply-adds are split (${p.source}` +
        (Number.isFinite(p.roundTripUs) ? `; hand-off ${p.roundTripUs.toFixed(1)} µs` : "") +
        ")",
    );
  }
  return lines;
}
