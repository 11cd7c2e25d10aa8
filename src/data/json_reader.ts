/**
 * A pull reader for one large JSON document that arrives as bytes, in chunks. It exists so a
 * tokenizer file (11–33 MB of JSON) can be turned into typed arrays without ever building the JS
 * object tree that `JSON.parse` makes, which costs ~15× the file in heap the engine keeps.
 *
 * The parsing primitives are synchronous and work on a window of buffered bytes. When one runs
 * off the end of the window it throws {@link NEED_MORE}; {@link JsonReader.step} catches that,
 * reads more (growing the window when one value is larger than it), rewinds and runs the step
 * again. A step must therefore not publish anything until it has returned.
 *
 * @example
 * ```ts
 * import { JsonReader } from "./json_reader.ts";
 * const r = new JsonReader(new TextEncoder().encode('{"a": [1, "x"], "b": null}'), "doc.json");
 * await r.step(() => r.enterObject());
 * const seen: string[] = [];
 * while (await r.step(() => r.nextKey(), 256)) {
 *   seen.push(`${r.key}=${JSON.stringify(await r.step(() => r.readValue()))}`);
 * }
 * console.log(seen); // ["a=[1,\"x\"]", "b=null"]
 * ```
 */

/** Thrown by a primitive that needs bytes beyond the buffered window (never escapes `step`). */
export const NEED_MORE: unique symbol = Symbol("json_reader.need_more");

/** Malformed JSON: the message says what was expected and at which byte. */
export class JsonSyntaxError extends Error {
  override name = "JsonSyntaxError";
}

const QUOTE = 0x22, BACKSLASH = 0x5c, COMMA = 0x2c, COLON = 0x3a;
const LBRACE = 0x7b, RBRACE = 0x7d, LBRACKET = 0x5b, RBRACKET = 0x5d;

/** Something that reads into a buffer it is given, as `Deno.FsFile` does. */
export interface ReadInto {
  /** Reads up to `p.length` bytes into `p`: the count, or null at the end. */
  read(p: Uint8Array): Promise<number | null>;
}

/** Where bytes come from: one whole buffer, a stream of chunks, or a {@link ReadInto}. */
export type JsonBytes = Uint8Array | ReadableStream<Uint8Array> | ReadInto;

/** A streaming JSON reader; see the module doc for the step/retry contract. */
export class JsonReader {
  /** Buffered bytes; `pos..end` is unread. */
  buf: Uint8Array;
  pos = 0;
  end = 0;
  /** True once the source has no more bytes. */
  done = false;
  /** The last key read by {@link nextKey}. */
  key = "";
  /** Bytes of the last string read by {@link readStringBytes}: `scratch[0..scratchLen)`. */
  scratch = new Uint8Array(256);
  scratchLen = 0;
  #consumed = 0;
  #reader: ReadableStreamDefaultReader<Uint8Array> | null;
  #byob: ReadableStreamBYOBReader | null = null;
  #into: ReadInto | null = null;
  /** Per nesting level: true until the first element or member has been read. */
  #first: boolean[] = [];

  constructor(source: JsonBytes, readonly name: string) {
    if (source instanceof Uint8Array) {
      this.buf = source;
      this.end = source.length;
      this.done = true;
      this.#reader = null;
    } else if (!(source instanceof ReadableStream)) {
      this.buf = new Uint8Array(1 << 16);
      this.#reader = null;
      this.#into = source;
    } else {
      this.buf = new Uint8Array(1 << 16);
      // A byte stream fills our own buffer; other streams hand over a new chunk per read, which
      // the allocator may keep long after they are collected.
      try {
        this.#byob = source.getReader({ mode: "byob" });
        this.#reader = null;
      } catch {
        this.#reader = source.getReader();
      }
    }
  }

  /** Byte offset of the read position in the whole document (for error messages). */
  get offset(): number {
    return this.#consumed + this.pos;
  }

  /** Buffers at least `want` unread bytes, or everything left. */
  async fill(want: number): Promise<void> {
    while (!this.done && this.end - this.pos < want) {
      if (this.pos > 0) {
        this.buf.copyWithin(0, this.pos, this.end);
        this.#consumed += this.pos;
        this.end -= this.pos;
        this.pos = 0;
      }
      if (this.#into) {
        if (this.end === this.buf.length || this.buf.length < want) {
          const grown = new Uint8Array(Math.max(this.buf.length * 2, want));
          grown.set(this.buf.subarray(0, this.end));
          this.buf = grown;
        }
        const n = await this.#into.read(this.buf.subarray(this.end));
        if (n === null) this.done = true;
        else this.end += n;
        continue;
      }
      if (this.#byob) {
        if (this.end === this.buf.length || this.buf.length < want) {
          const grown = new Uint8Array(Math.max(this.buf.length * 2, want));
          grown.set(this.buf.subarray(0, this.end));
          this.buf = grown;
        }
        // The reader takes the buffer over and hands back a view of the same memory.
        const view = new Uint8Array(
          this.buf.buffer as ArrayBuffer,
          this.end,
          this.buf.length - this.end,
        );
        const { value, done } = await this.#byob.read(view);
        if (value) {
          this.buf = new Uint8Array(value.buffer);
          this.end += value.byteLength;
        }
        if (done) {
          this.done = true;
          this.#byob.releaseLock();
        }
        continue;
      }
      const chunk = (await this.#reader!.read()).value;
      if (chunk === undefined) {
        this.done = true;
        this.#reader!.releaseLock();
        break;
      }
      if (this.buf.length - this.end < chunk.length) {
        const grown = new Uint8Array(Math.max(this.buf.length * 2, this.end + chunk.length));
        grown.set(this.buf.subarray(0, this.end));
        this.buf = grown;
      }
      this.buf.set(chunk, this.end);
      this.end += chunk.length;
    }
  }

  /**
   * Runs the synchronous `parse` with at least `window` bytes buffered, rewinding and retrying
   * with more bytes whenever it needs them.
   */
  async step<T>(parse: () => T, window = 1 << 16): Promise<T> {
    for (;;) {
      if (!this.done && this.end - this.pos < window) await this.fill(window);
      this.mark();
      try {
        return parse();
      } catch (e) {
        if (e !== NEED_MORE) throw e;
        this.rewind();
        window = Math.max(window * 2, this.end - this.pos + 1);
      }
    }
  }

  /**
   * Calls `parse` again and again while it returns true, each call all-or-nothing: bytes are
   * read ahead between calls, and a call that runs out is rewound and repeated with more. For
   * the long runs of small members (a vocabulary, a merge list) without one await per member.
   */
  async each(parse: () => boolean, window = 1 << 16): Promise<void> {
    for (;;) {
      await this.fill(window);
      let want = window;
      for (;;) {
        if (!this.done && this.end - this.pos < (window >> 1)) break;
        this.mark();
        try {
          if (!parse()) return;
        } catch (e) {
          if (e !== NEED_MORE) throw e;
          this.rewind();
          want = Math.max(window, this.end - this.pos) * 2;
          break;
        }
      }
      if (want > window) await this.fill(want);
    }
  }

  #markPos = 0;
  #markDepth = 0;
  #markTop = false;

  /** Remembers the read position and the open level's state, for {@link rewind}. */
  mark(): void {
    this.#markPos = this.pos;
    this.#markDepth = this.#first.length;
    // A step closes at most the level open when it began, so that level's flag is all to keep.
    this.#markTop = this.#markDepth > 0 && this.#first[this.#markDepth - 1];
  }

  /** Returns to the last {@link mark}. */
  rewind(): void {
    this.pos = this.#markPos;
    if (this.#markDepth === 0) {
      this.#first.length = 0;
      return;
    }
    this.#first.length = this.#markDepth - 1;
    this.#first.push(this.#markTop);
  }

  /** True when at least `n` unread bytes are buffered or the document is fully buffered. */
  has(n: number): boolean {
    return this.done || this.end - this.pos >= n;
  }

  fail(what: string): never {
    throw new JsonSyntaxError(`${what} at byte ${this.offset}`);
  }

  #byte(): number {
    if (this.pos >= this.end) {
      if (this.done) this.fail("unexpected end of JSON");
      throw NEED_MORE;
    }
    return this.buf[this.pos];
  }

  /** The next non-whitespace byte, not consumed. */
  peek(): number {
    for (;;) {
      const c = this.#byte();
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) this.pos++;
      else return c;
    }
  }

  #expect(c: number, what: string): void {
    if (this.peek() !== c) this.fail(`expected ${what}`);
    this.pos++;
  }

  /** Consumes `{`. Members follow through {@link nextKey}. */
  enterObject(): void {
    this.#expect(LBRACE, "'{'");
    this.#first.push(true);
  }

  /** Consumes `[`. Elements follow through {@link nextItem}. */
  enterArray(): void {
    this.#expect(LBRACKET, "'['");
    this.#first.push(true);
  }

  /** Reads the next member's key into {@link key} and its colon; false at the closing `}`. */
  nextKey(): boolean {
    if (!this.#separator(RBRACE)) return false;
    this.key = this.readString();
    this.#expect(COLON, "':'");
    return true;
  }

  /** Like {@link nextKey}, with the key's bytes in `scratch` (no JS string is made). */
  nextKeyBytes(): boolean {
    if (!this.#separator(RBRACE)) return false;
    this.readStringBytes();
    this.#expect(COLON, "':'");
    return true;
  }

  /** Positions at the next element; false at the closing `]`. */
  nextItem(): boolean {
    return this.#separator(RBRACKET);
  }

  #separator(close: number): boolean {
    const depth = this.#first.length - 1;
    const c = this.peek();
    if (c === close) {
      this.pos++;
      this.#first.pop();
      return false;
    }
    if (this.#first[depth]) {
      this.#first[depth] = false;
      return true;
    }
    if (c !== COMMA) this.fail(`expected ',' or '${String.fromCharCode(close)}'`);
    this.pos++;
    return true;
  }

  /** Reads a string as its UTF-8 bytes into `scratch[0..scratchLen)`, escapes decoded. */
  readStringBytes(): void {
    this.#expect(QUOTE, "a string");
    let n = 0;
    for (;;) {
      if (this.pos >= this.end) this.#byte();
      let c = this.buf[this.pos++];
      if (c === QUOTE) break;
      if (n + 4 > this.scratch.length) {
        const grown = new Uint8Array(this.scratch.length * 2);
        grown.set(this.scratch.subarray(0, n));
        this.scratch = grown;
      }
      if (c !== BACKSLASH) {
        this.scratch[n++] = c;
        continue;
      }
      c = this.#byte();
      this.pos++;
      switch (c) {
        case 0x6e: // n
          this.scratch[n++] = 0x0a;
          break;
        case 0x74: // t
          this.scratch[n++] = 0x09;
          break;
        case 0x72: // r
          this.scratch[n++] = 0x0d;
          break;
        case 0x62: // b
          this.scratch[n++] = 0x08;
          break;
        case 0x66: // f
          this.scratch[n++] = 0x0c;
          break;
        case 0x75: { // u
          let cp = this.#hex4();
          if (
            cp >= 0xd800 && cp < 0xdc00 && this.#byteAt(0) === BACKSLASH &&
            this.#byteAt(1) === 0x75
          ) {
            const save = this.pos;
            this.pos += 2;
            const lo = this.#hex4();
            if (lo >= 0xdc00 && lo < 0xe000) cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            else this.pos = save;
          }
          n = writeUtf8(this.scratch, n, cp);
          break;
        }
        default:
          this.scratch[n++] = c; // \" \\ \/
      }
    }
    this.scratchLen = n;
  }

  #byteAt(k: number): number {
    if (this.pos + k >= this.end) {
      if (this.done) return -1;
      throw NEED_MORE;
    }
    return this.buf[this.pos + k];
  }

  #hex4(): number {
    let v = 0;
    for (let i = 0; i < 4; i++) {
      const c = this.#byte();
      this.pos++;
      const d = c <= 0x39 ? c - 0x30 : (c | 0x20) - 0x57;
      if (d < 0 || d > 15 || (c > 0x39 && (c | 0x20) < 0x61)) this.fail("bad \\u escape");
      v = v * 16 + d;
    }
    return v;
  }

  /** Reads a string value. */
  readString(): string {
    this.readStringBytes();
    return utf8Decoder.decode(this.scratch.subarray(0, this.scratchLen));
  }

  /** Reads a number value. */
  readNumber(): number {
    this.peek();
    const start = this.pos;
    // Non-negative integers (every id in a tokenizer file) without making a string.
    let v = 0, k = 0;
    for (let c = this.#byteAt(0); c >= 0x30 && c <= 0x39; c = this.#byteAt(++k)) {
      v = v * 10 + (c - 0x30);
    }
    const after = this.#byteAt(k);
    if (k > 0 && k < 16 && after !== 0x2e && after !== 0x65 && after !== 0x45) {
      this.pos += k;
      return v;
    }
    for (;;) {
      const c = this.#byteAt(0);
      if (c === -1) break;
      if (
        (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x2b || c === 0x2e || c === 0x65 ||
        c === 0x45
      ) this.pos++;
      else break;
    }
    const num = Number(String.fromCharCode(...this.buf.subarray(start, this.pos)));
    if (this.pos === start || Number.isNaN(num)) this.fail("expected a number");
    return num;
  }

  /** Reads any value into plain JS (for the small parts of a document). */
  readValue(): unknown {
    const c = this.peek();
    if (c === QUOTE) return this.readString();
    if (c === LBRACE) {
      const o: Record<string, unknown> = {};
      this.enterObject();
      while (this.nextKey()) {
        const k = this.key;
        o[k] = this.readValue();
      }
      return o;
    }
    if (c === LBRACKET) {
      const a: unknown[] = [];
      this.enterArray();
      while (this.nextItem()) a.push(this.readValue());
      return a;
    }
    if (c === 0x74) return this.#word("true", true);
    if (c === 0x66) return this.#word("false", false);
    if (c === 0x6e) return this.#word("null", null);
    return this.readNumber();
  }

  #word<T>(w: string, v: T): T {
    for (let i = 0; i < w.length; i++) {
      if (this.#byteAt(i) !== w.charCodeAt(i)) this.fail(`expected ${w}`);
    }
    this.pos += w.length;
    return v;
  }

  /** Skips one value without building it. */
  skipValue(): void {
    const c = this.peek();
    if (c === QUOTE) {
      this.pos++;
      for (;;) {
        const b = this.#byte();
        this.pos++;
        if (b === BACKSLASH) {
          this.#byte();
          this.pos++;
        } else if (b === QUOTE) return;
      }
    }
    if (c === LBRACE) {
      this.enterObject();
      while (this.nextKey()) this.skipValue();
      return;
    }
    if (c === LBRACKET) {
      this.enterArray();
      while (this.nextItem()) this.skipValue();
      return;
    }
    this.readValue();
  }

  /**
   * Skips one value of any size, reading more as needed (for large values nobody needs). The
   * members of a container are skipped in synchronous runs over the buffered bytes, a refill
   * between runs; only a member larger than the buffer is descended into on its own, so the
   * buffer never grows past the window. One await per member instead made a 6,000-entry map
   * (Gemma 3's `added_tokens_decoder`) cost a second and grow the engine's young generation.
   */
  async skipLarge(window = 1 << 16): Promise<void> {
    const c = await this.step(() => this.peek(), 16);
    if (c !== LBRACE && c !== LBRACKET) return this.step(() => this.skipValue());
    await this.step(() => (c === LBRACE ? this.enterObject() : this.enterArray()), 16);
    const next = () => (c === LBRACE ? this.nextKey() : this.nextItem());
    for (;;) {
      await this.fill(window);
      const from = this.pos;
      for (;;) {
        this.mark();
        try {
          if (!next()) return;
          this.skipValue();
        } catch (e) {
          if (e !== NEED_MORE) throw e;
          this.rewind();
          break;
        }
      }
      if (this.pos === from) {
        // The next member does not fit in the window: its own containers, one at a time.
        if (!(await this.step(next, 1024))) return;
        await this.skipLarge(window);
      }
    }
  }
}

// ignoreBOM: a string that begins with U+FEFF keeps it (Gemma has tokens that do).
const utf8Decoder = new TextDecoder("utf-8", { ignoreBOM: true });

/** Writes code point `cp` as UTF-8 at `out[n]` (lone surrogates as their 3-byte form). */
export function writeUtf8(out: Uint8Array, n: number, cp: number): number {
  if (cp < 0x80) out[n++] = cp;
  else if (cp < 0x800) {
    out[n++] = 0xc0 | (cp >> 6);
    out[n++] = 0x80 | (cp & 63);
  } else if (cp < 0x10000) {
    out[n++] = 0xe0 | (cp >> 12);
    out[n++] = 0x80 | ((cp >> 6) & 63);
    out[n++] = 0x80 | (cp & 63);
  } else {
    out[n++] = 0xf0 | (cp >> 18);
    out[n++] = 0x80 | ((cp >> 12) & 63);
    out[n++] = 0x80 | ((cp >> 6) & 63);
    out[n++] = 0x80 | (cp & 63);
  }
  return n;
}
