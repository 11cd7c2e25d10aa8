/**
 * A `--model` location as the command lines take it: a local Hugging Face model directory or an
 * http(s) URL of one, and the tokenizer shipped there (`tokenizer.json` + `tokenizer_config.json`
 * [+ `chat_template.jinja`]).
 */
import type { TextTokenizer } from "../data/tokenizer.ts";
import { hasTokenizer, loadTokenizerDir } from "./tokenizer.ts";

/** True for an `http(s)://` model location. */
export function isUrl(s: string): boolean {
  return /^https?:\/\//i.test(s);
}

/** The response body at `url`, or null on 404; other HTTP errors throw naming the URL. */
async function fetchBody(url: string): Promise<ReadableStream<Uint8Array> | null> {
  const r = await fetch(url);
  if (r.status === 404) {
    await r.body?.cancel();
    return null;
  }
  if (!r.ok) {
    await r.body?.cancel();
    throw new Error(`${url}: HTTP ${r.status}`);
  }
  return r.body ?? new Blob([]).stream();
}

/** The text at `url`, or null on 404; other HTTP errors throw naming the URL. */
export async function fetchText(url: string): Promise<string | null> {
  const body = await fetchBody(url);
  return body === null ? null : await new Response(body).text();
}

/** The tokenizer shipped with the model, or null (then only `input_ids` data can be used). */
export async function openModelTokenizer(
  model: string,
  cacheDir: string | null = null,
): Promise<TextTokenizer | null> {
  if (!isUrl(model)) {
    return (await hasTokenizer(model)) ? await loadTokenizerDir(model, { cacheDir }) : null;
  }
  const base = model.replace(/\/+$/, "");
  const json = await fetchBody(`${base}/tokenizer.json`);
  if (json === null) return null;
  const { readTokenizer } = await import("../data/tokenizer.ts");
  return await readTokenizer({
    tokenizerJson: json,
    tokenizerConfig: await fetchBody(`${base}/tokenizer_config.json`),
    name: base,
  });
}

/** Most special tokens a tokenizer may hold past the model's embedding rows. */
const MAX_SPECIAL_PAST_VOCAB = 256;

/**
 * Throws when `tokenizer` has ids past the model's `vocabSize` embedding rows, unless every one of
 * them (at most {@link MAX_SPECIAL_PAST_VOCAB}) is a special token, which ordinary text never
 * encodes to: Gemma 3's text models ship the family's tokenizer, whose `<image_soft_token>` is
 * id 262144 of a 262144-row embedding. Text that spells one out is refused where it is encoded.
 */
export function checkTokenizerFits(
  model: string,
  tokenizer: TextTokenizer,
  vocabSize: number,
): void {
  const past = tokenizer.vocabSize - vocabSize;
  const onlySpecial = () => {
    for (let id = vocabSize; id < tokenizer.vocabSize; id++) {
      if (tokenizer.decode([id], true) !== "") return false;
    }
    return true;
  };
  if (past > 0 && (past > MAX_SPECIAL_PAST_VOCAB || !onlySpecial())) {
    throw new Error(
      `${model}: the tokenizer has ${tokenizer.vocabSize} tokens but the model only ${vocabSize}`,
    );
  }
}
