/**
 * The generation loop: prefill the prompt, then sample one token at a time from the decoder's
 * logits until an end-of-sequence id or the token budget.
 *
 * @example
 * ```ts
 * import { Decoder } from "./decoder.ts";
 * import { generate } from "./loop.ts";
 * import { loadKernelsSync } from "../kernels/wasm.ts";
 * import { createRandomWeightStore, tinyConfig } from "../model/random_weights.ts";
 * const { kernels, arena } = loadKernelsSync();
 * const store = createRandomWeightStore({ config: tinyConfig("llama"), kernels, arena, seed: 1 });
 * const decoder = Decoder.create({ store, kernels, arena, maxLen: 3 + 8 });
 * const r = await generate(decoder, [5, 6, 7], {
 *   maxNewTokens: 8, temperature: 0.7, topP: 0.9, seed: 1,
 * }, (id) => console.log(id));
 * console.log(r.ids.length, r.stop);
 * ```
 */
import { Rng } from "../runtime/rng.ts";
import type { Decoder } from "./decoder.ts";
import { sampleToken, type SamplingOptions } from "./sampling.ts";

export interface GenerateOptions extends SamplingOptions {
  /** Most tokens to generate (>= 1). */
  maxNewTokens: number;
  /** Seed of the sampling Rng (unused by greedy decoding). */
  seed: number;
  /** Token ids that end the generation (not included in the output). */
  stopIds?: Iterable<number>;
}

export interface GenerateResult {
  /** Generated token ids (without the stop token). */
  ids: number[];
  /** `eos`: a stop id was sampled; `length`: `maxNewTokens` reached. */
  stop: "eos" | "length";
  promptTokens: number;
  /** Wall time of the prompt's forward (ms) and of the generated tokens' steps. */
  prefillMs: number;
  decodeMs: number;
}

/**
 * Resets `decoder`, prefills `prompt` and generates. `onToken` sees each generated id as soon as
 * it is chosen (before the next forward). The decoder must hold `prompt + maxNewTokens - 1`
 * positions (the last token is never fed back).
 */
export async function generate(
  decoder: Decoder,
  prompt: readonly number[],
  options: GenerateOptions,
  onToken?: (id: number) => void | Promise<void>,
): Promise<GenerateResult> {
  checkMaxNewTokens(options.maxNewTokens);
  if (prompt.length === 0) throw new RangeError("generate: the prompt has no tokens");
  const need = prompt.length + options.maxNewTokens - 1;
  if (need > decoder.cache.maxLen) {
    throw new RangeError(
      `generate: prompt ${prompt.length} + ${options.maxNewTokens} new tokens need ${need} ` +
        `cached positions, the decoder holds ${decoder.cache.maxLen}`,
    );
  }
  const rng = new Rng(options.seed);
  decoder.reset();
  const t0 = performance.now();
  const logits = await decoder.append(prompt);
  const t1 = performance.now();
  const r = await continueGeneration(decoder, logits, options, rng, onToken);
  return { ...r, promptTokens: prompt.length, prefillMs: t1 - t0 };
}

/** What {@link continueGeneration} returns. */
export type ContinueResult = Pick<GenerateResult, "ids" | "stop" | "decodeMs">;

/**
 * Samples from `logits` (the next-token logits of what the decoder holds), feeds each chosen id
 * back, and so on until a stop id or `maxNewTokens`; draws from `rng` (so a multi-turn session
 * can keep one stream). Each generated id but the last enters the cache, so the decoder needs
 * `maxNewTokens - 1` free positions. `options.seed` is not used. Each step's logits are written
 * over `logits` (one `[vocab]` array for the whole answer, not one per token).
 */
export async function continueGeneration(
  decoder: Decoder,
  logits: Float32Array,
  options: Omit<GenerateOptions, "seed">,
  rng: Rng,
  onToken?: (id: number) => void | Promise<void>,
): Promise<ContinueResult> {
  const { maxNewTokens } = options;
  checkMaxNewTokens(maxNewTokens);
  decoder.cache.checkRoom(maxNewTokens - 1);
  const stop = new Set(options.stopIds ?? []);
  const t0 = performance.now();
  const ids: number[] = [];
  let reason: GenerateResult["stop"] = "length";
  for (;;) {
    const id = sampleToken(logits, options, rng);
    if (stop.has(id)) {
      reason = "eos";
      break;
    }
    ids.push(id);
    await onToken?.(id);
    if (ids.length >= maxNewTokens) break;
    logits = await decoder.append([id], "last", logits);
  }
  return { ids, stop: reason, decodeMs: performance.now() - t0 };
}

function checkMaxNewTokens(n: number): void {
  if (!(Number.isInteger(n) && n >= 1)) {
    throw new RangeError(`maxNewTokens must be a positive integer, got ${n}`);
  }
}
