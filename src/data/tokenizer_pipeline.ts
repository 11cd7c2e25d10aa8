/**
 * The text stages around a BPE model, built from the `normalizer`, `pre_tokenizer`,
 * `post_processor` and `decoder` entries of `tokenizer.json`: the kinds the supported model
 * families use (Qwen2.5/Qwen3, Llama 3, SmolLM2, Gemma 3), with the semantics of Hugging Face's
 * JavaScript tokenizers, which the differential tests hold this to. A kind outside that set is
 * refused with {@link UnsupportedTokenizerError} naming it, never approximated.
 *
 * @example
 * ```ts
 * import { normalizerOf, preTokenizerOf } from "./tokenizer_pipeline.ts";
 * const pre = preTokenizerOf({ type: "Digits", individual_digits: true });
 * console.log(pre.split("ab12"), normalizerOf({ type: "NFC" })!("e\u0301") === "\u00e9");
 * // ["ab", "1", "2"] true
 * ```
 */
import { translatePattern, UnsupportedPatternError } from "./tokenizer_regex.ts";

/** A tokenizer.json feature this tokenizer does not implement. */
export class UnsupportedTokenizerError extends Error {
  override name = "UnsupportedTokenizerError";
}

type Config = Record<string, unknown>;

function typeOf(cfg: unknown, where: string): string {
  const t = (cfg as Config | null)?.type;
  if (typeof t !== "string") throw new UnsupportedTokenizerError(`${where}: missing "type"`);
  return t;
}

function unsupported(where: string, type: string): never {
  throw new UnsupportedTokenizerError(`${where} of type "${type}" is not supported`);
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** A `{"String": s}` or `{"Regex": r}` pattern; `capture` wraps a string in a group. */
function patternOf(p: unknown, where: string, capture = false): RegExp {
  const pat = p as { String?: unknown; Regex?: unknown } | null;
  if (typeof pat?.String === "string") {
    const e = escapeRegExp(pat.String);
    return new RegExp(capture ? `(${e})` : e, "gu");
  }
  if (typeof pat?.Regex === "string") {
    try {
      return translatePattern(pat.Regex);
    } catch (e) {
      if (e instanceof UnsupportedPatternError) {
        throw new UnsupportedTokenizerError(`${where}: ${e.message}`);
      }
      throw e;
    }
  }
  throw new UnsupportedTokenizerError(`${where}: pattern must be {"String"} or {"Regex"}`);
}

/** A text-to-text step applied before splitting. */
export type Normalize = (text: string) => string;

/** The normalizer, or null when there is none. */
export function normalizerOf(cfg: unknown, where = "normalizer"): Normalize | null {
  if (cfg === null || cfg === undefined) return null;
  const type = typeOf(cfg, where);
  const c = cfg as Config;
  switch (type) {
    case "NFC":
    case "NFD":
    case "NFKC":
    case "NFKD":
      return (s) => s.normalize(type);
    case "Lowercase":
      return (s) => s.toLowerCase();
    case "Prepend": {
      const p = String(c.prepend ?? "");
      return (s) => p + s;
    }
    case "Replace": {
      const re = patternOf(c.pattern, where);
      const content = String(c.content ?? "");
      return (s) => s.replaceAll(re, content);
    }
    case "Sequence": {
      const steps = ((c.normalizers as unknown[]) ?? []).map((n, i) =>
        normalizerOf(n, `${where}.normalizers[${i}]`)
      ).filter((n): n is Normalize => n !== null);
      return (s) => steps.reduce((t, f) => f(t), s);
    }
    default:
      return unsupported(where, type);
  }
}

/** How a section of text becomes words for the model. */
export interface PreTokenizer {
  split(text: string): string[];
  /** True when a ByteLevel step maps each word's UTF-8 bytes to the byte alphabet. */
  readonly byteLevel: boolean;
}

const GPT2_PATTERN = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

/** Splits keeping both the matches and the text between them. */
function splitIsolated(text: string, re: RegExp): string[] {
  const out: string[] = [];
  let prev = 0;
  for (const m of text.matchAll(re)) {
    if (prev < m.index) out.push(text.slice(prev, m.index));
    if (m[0].length > 0) out.push(m[0]);
    prev = m.index + m[0].length;
  }
  if (prev < text.length) out.push(text.slice(prev));
  return out;
}

type Split = (text: string) => string[];

/** The pre-tokenizer (identity when there is none). */
export function preTokenizerOf(cfg: unknown, where = "pre_tokenizer"): PreTokenizer {
  if (cfg === null || cfg === undefined) return { split: (s) => [s], byteLevel: false };
  const steps: Split[] = [];
  let byteLevel = false;
  const add = (c: unknown, at: string, last: boolean): void => {
    const type = typeOf(c, at);
    const o = c as Config;
    if (byteLevel) {
      throw new UnsupportedTokenizerError(`${at}: a step after ByteLevel is not supported`);
    }
    switch (type) {
      case "Sequence": {
        const list = (o.pretokenizers as unknown[]) ?? [];
        list.forEach((p, i) => add(p, `${at}.pretokenizers[${i}]`, last && i === list.length - 1));
        return;
      }
      case "Split": {
        const invert = o.invert === true;
        const re = patternOf(o.pattern, at, !invert);
        const behavior = String(o.behavior ?? "").toLowerCase();
        if (invert) steps.push((s) => (s.match(re) ?? []).filter((x) => x));
        else if (behavior === "removed") steps.push((s) => s.split(re).filter((x) => x));
        else steps.push((s) => splitIsolated(s, re));
        return;
      }
      case "Digits": {
        const re = new RegExp(`[^\\d]+|\\d${o.individual_digits ? "" : "+"}`, "gu");
        steps.push((s) => s.match(re) ?? []);
        return;
      }
      case "ByteLevel": {
        const prefix = o.add_prefix_space === true;
        const regex = o.use_regex !== false;
        steps.push((s) => {
          const t = prefix && !s.startsWith(" ") ? " " + s : s;
          return regex ? (t.match(GPT2_PATTERN) ?? []) : [t];
        });
        byteLevel = true;
        return;
      }
      default:
        unsupported(at, type);
    }
  };
  add(cfg, where, true);
  return {
    split: (s) => steps.reduce<string[]>((words, f) => words.flatMap(f), [s]),
    byteLevel,
  };
}

/** The single-sequence template: a token string to insert, or null for the text's tokens. */
export type PostTemplate = (string | null)[];

/** The post-processor's single-sequence template, or null when it adds nothing. */
export function postTemplateOf(cfg: unknown, where = "post_processor"): PostTemplate | null {
  if (cfg === null || cfg === undefined) return null;
  const type = typeOf(cfg, where);
  const c = cfg as Config;
  switch (type) {
    case "ByteLevel":
      return null;
    case "TemplateProcessing":
      return ((c.single as Config[]) ?? []).map((item, i) => {
        const sp = item.SpecialToken as { id?: unknown } | undefined;
        if (sp && typeof sp.id === "string") return sp.id;
        const seq = item.Sequence as { id?: unknown } | undefined;
        if (seq?.id === "A") return null;
        throw new UnsupportedTokenizerError(`${where}.single[${i}]: not a SpecialToken or A`);
      });
    case "Sequence": {
      let out: PostTemplate | null = null;
      for (const [i, p] of ((c.processors as unknown[]) ?? []).entries()) {
        const t = postTemplateOf(p, `${where}.processors[${i}]`);
        if (t) {
          if (out) {
            throw new UnsupportedTokenizerError(`${where}: two templates are not supported`);
          }
          out = t;
        }
      }
      return out;
    }
    default:
      return unsupported(where, type);
  }
}

/** Printable stand-ins of the 256 byte values in byte-level vocabularies. */
export const BYTE_TO_CHAR: Uint16Array = (() => {
  const map = new Uint16Array(256);
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || b >= 0xae;
    map[b] = printable ? b : 256 + extra++;
  }
  return map;
})();

/** The inverse of {@link BYTE_TO_CHAR}: code point → byte, -1 for other code points. */
export const CHAR_TO_BYTE: Int16Array = (() => {
  const inv = new Int16Array(324).fill(-1);
  for (let b = 0; b < 256; b++) inv[BYTE_TO_CHAR[b]] = b;
  return inv;
})();

type DecodeStep = (tokens: string[]) => string[];

/** Joins decoded pieces into text. */
export type Decode = (tokens: string[]) => string;

/** The decoder: token strings to text. `isAdded` tells added tokens (kept verbatim). */
export function decoderOf(
  cfg: unknown,
  isAdded: (token: string) => boolean,
  where = "decoder",
): Decode {
  if (cfg === null || cfg === undefined) return (tokens) => tokens.join(" ");
  const step = decodeStepOf(cfg, isAdded, where);
  return (tokens) => step(tokens).join("");
}

function decodeStepOf(cfg: unknown, isAdded: (t: string) => boolean, where: string): DecodeStep {
  const type = typeOf(cfg, where);
  const c = cfg as Config;
  switch (type) {
    case "ByteLevel": {
      const dec = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });
      const bytesOf = (text: string): string => {
        const cps = Array.from(text, (ch) => {
          const cp = ch.codePointAt(0)!;
          return cp < CHAR_TO_BYTE.length && CHAR_TO_BYTE[cp] >= 0 ? CHAR_TO_BYTE[cp] : 0;
        });
        return dec.decode(Uint8Array.from(cps));
      };
      return (tokens) => {
        const out: string[] = [];
        let run: string[] = [];
        for (const t of tokens) {
          if (isAdded(t)) {
            if (run.length) out.push(bytesOf(run.join("")));
            run = [];
            out.push(t);
          } else run.push(t);
        }
        if (run.length) out.push(bytesOf(run.join("")));
        return out;
      };
    }
    case "Replace": {
      const re = patternOf(c.pattern, where);
      const content = String(c.content ?? "");
      return (tokens) => tokens.map((t) => t.replaceAll(re, content));
    }
    case "ByteFallback": {
      const dec = new TextDecoder();
      return (tokens) => {
        const out: string[] = [];
        let bytes: number[] = [];
        for (const t of tokens) {
          const b = t.length === 6 && t.startsWith("<0x") && t.endsWith(">")
            ? parseInt(t.slice(3, 5), 16)
            : NaN;
          if (!Number.isNaN(b)) bytes.push(b);
          else {
            if (bytes.length) out.push(dec.decode(Uint8Array.from(bytes)));
            bytes = [];
            out.push(t);
          }
        }
        if (bytes.length) out.push(dec.decode(Uint8Array.from(bytes)));
        return out;
      };
    }
    case "Fuse":
      return (tokens) => [tokens.join("")];
    case "Strip": {
      const content = String(c.content ?? ""), start = Number(c.start ?? 0);
      const stop = Number(c.stop ?? 0);
      return (tokens) =>
        tokens.map((t) => {
          let a = 0, z = t.length;
          for (let i = 0; i < start && t[i] === content; i++) a = i + 1;
          for (let i = 0; i < stop && t[t.length - 1 - i] === content; i++) z = t.length - 1 - i;
          return t.slice(a, z);
        });
    }
    case "Sequence": {
      const steps = ((c.decoders as unknown[]) ?? []).map((d, i) =>
        decodeStepOf(d, isAdded, `${where}.decoders[${i}]`)
      );
      return (tokens) => steps.reduce((t, f) => f(t), tokens);
    }
    default:
      return unsupported(where, type);
  }
}

/** The spacing clean-up `clean_up_tokenization_spaces` asks for. */
export function cleanUpSpaces(text: string): string {
  return text.replace(/ \./g, ".").replace(/ \?/g, "?").replace(/ !/g, "!").replace(/ ,/g, ",")
    .replace(/ ' /g, "'").replace(/ n't/g, "n't").replace(/ 'm/g, "'m").replace(/ 's/g, "'s")
    .replace(/ 've/g, "'ve").replace(/ 're/g, "'re");
}
