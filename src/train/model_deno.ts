/**
 * Opens `--model` (a local Hugging Face model directory or an http(s) URL of one) for the CLI:
 * the weight store through `openModel` (src/io/checkpoint_deno.ts) and, when the model ships one,
 * its tokenizer (`tokenizer.json` + `tokenizer_config.json` [+ `chat_template.jinja`]).
 */
import { createTokenizer, type TextTokenizer } from "../data/tokenizer.ts";
import { hasTokenizer, loadTokenizerDir } from "../data/tokenizer_deno.ts";
import { openModel } from "../io/checkpoint_deno.ts";
import type { Kernels } from "../kernels/abi.ts";
import { DEFAULT_HEAD_CHUNK_ROWS } from "../model/memory_plan.ts";
import type { WeightStore } from "../model/weights.ts";
import type { Arena } from "../runtime/arena.ts";
import type { TrainArgs } from "./args.ts";

function isUrl(s: string): boolean {
  return /^https?:\/\//i.test(s);
}

async function fetchJson(url: string): Promise<unknown | null> {
  const r = await fetch(url);
  if (r.status === 404) {
    await r.body?.cancel();
    return null;
  }
  if (!r.ok) {
    await r.body?.cancel();
    throw new Error(`${url}: HTTP ${r.status}`);
  }
  return await r.json();
}

/** The tokenizer shipped with the model, or null (then only `input_ids` data can be used). */
export async function openModelTokenizer(model: string): Promise<TextTokenizer | null> {
  if (!isUrl(model)) return (await hasTokenizer(model)) ? await loadTokenizerDir(model) : null;
  const base = model.replace(/\/+$/, "");
  const json = await fetchJson(`${base}/tokenizer.json`);
  if (json === null) return null;
  const config = (await fetchJson(`${base}/tokenizer_config.json`)) ?? {};
  return createTokenizer(json, config);
}

/**
 * Vocabulary rows per LM-head chunk for `--head-chunk-rows` (0 = the default), a multiple of 16:
 * the ONE value both the streamed store's head slot and the session's head chunks use (a slot
 * larger than the chunks the session asks for would be planned memory never used).
 */
export function headChunkRowsFor(args: Pick<TrainArgs, "headChunkRows">): number {
  const rows = args.headChunkRows > 0 ? args.headChunkRows : DEFAULT_HEAD_CHUNK_ROWS;
  return Math.ceil(rows / 16) * 16;
}

/** Opens the model's weights (per --quant/--weights/--cache-dir) and its tokenizer. */
export async function openModelDeno(
  args: TrainArgs,
  kernels: Kernels,
  arena: Arena,
): Promise<{ store: WeightStore; tokenizer: TextTokenizer | null }> {
  const model = args.model!;
  const tokenizer = await openModelTokenizer(model);
  const store = await openModel({
    source: model,
    quant: args.quant,
    weights: args.weights,
    cacheDir: args.cacheDir ?? undefined,
    headChunkRows: headChunkRowsFor(args),
    kernels,
    arena,
  });
  if (tokenizer && tokenizer.vocabSize > store.config.vocabSize) {
    await store.close();
    throw new Error(
      `${model}: the tokenizer has ${tokenizer.vocabSize} tokens but the model only ` +
        `${store.config.vocabSize}`,
    );
  }
  return { store, tokenizer };
}
