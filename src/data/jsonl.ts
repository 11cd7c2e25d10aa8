/**
 * Streams the lines of a JSON Lines file from a byte stream (Web Streams, so it runs the same in
 * Deno, browsers and edge runtimes). Blank lines are skipped; line numbers are 1-based and count
 * every line, so errors can point at the exact line of the file. Memory is bounded by the longest
 * line, and lines are refused past a limit ({@link JsonlLineTooLongError}): a stray multi-MB line
 * never makes the reader hold it.
 *
 * @example
 * ```ts
 * import { jsonlLines } from "./jsonl.ts";
 * const bytes = new TextEncoder().encode('{"text":"a"}\n\n{"text":"b"}\n');
 * for await (const { line, text } of jsonlLines(new Blob([bytes]).stream())) {
 *   console.log(line, text); // 1 {"text":"a"}, then 3 {"text":"b"}
 * }
 * ```
 */
import { BYTES_PER_MB, formatMB } from "../runtime/memory.ts";

/** One non-blank line of a JSONL file. */
export interface JsonlLine {
  /** 1-based line number in the file. */
  line: number;
  /** The line without its terminator (and without a trailing `\r`). */
  text: string;
}

/** Default of {@link JsonlOptions.maxLineBytes}: 8 MiB. */
export const DEFAULT_MAX_LINE_BYTES = 8 * BYTES_PER_MB;

/** Options of {@link jsonlLines}. */
export interface JsonlOptions {
  /** Longest line accepted, in bytes without its terminator (`--max-line-bytes`). */
  maxLineBytes?: number;
}

/** A line of the stream is not valid UTF-8. */
export class JsonlDecodeError extends Error {
  constructor(readonly line: number) {
    super("not valid UTF-8");
    this.name = "JsonlDecodeError";
  }
}

/** A line is longer than the limit. `bytes` is its whole length, counted without holding it. */
export class JsonlLineTooLongError extends Error {
  constructor(readonly line: number, readonly bytes: number, readonly limit: number) {
    super(`line is ${formatSize(bytes)} (limit ${formatSize(limit)}, --max-line-bytes)`);
    this.name = "JsonlLineTooLongError";
  }
}

/** "52.4 MB" from 1 MB up; "1234 bytes" below, so a small limit is still readable. */
function formatSize(bytes: number): string {
  return bytes >= BYTES_PER_MB ? formatMB(bytes) : `${bytes} bytes`;
}

/**
 * Yields every non-blank line of the UTF-8 byte stream `bytes`. Lines are split on bytes and each
 * is decoded on its own, so invalid UTF-8 is reported at its own line ({@link JsonlDecodeError})
 * and a character split across chunks is decoded whole. A line longer than
 * `options.maxLineBytes` throws {@link JsonlLineTooLongError} once its end is found; its bytes
 * are counted, not kept. The generator owns the stream: if the consumer stops before the end
 * (break, throw), the stream is cancelled.
 */
export async function* jsonlLines(
  bytes: ReadableStream<Uint8Array>,
  options: JsonlOptions = {},
): AsyncGenerator<JsonlLine> {
  const limit = options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
  if (!Number.isSafeInteger(limit) || limit < 1) {
    throw new RangeError(`maxLineBytes ${limit}: expected an integer >= 1`);
  }
  const decoder = new TextDecoder("utf-8", { fatal: true });
  const reader = new ChunkReader(bytes);
  // The start of a line that spans chunks, in a buffer reused from line to line (at most
  // `limit` bytes, grown as needed).
  let held = new Uint8Array(0);
  let heldBytes = 0;
  // Bytes of the current line once it is known to be over the limit (then nothing is held).
  let overBytes = -1;
  let line = 0;
  let finished = false;
  const decode = (bytes: Uint8Array): string => {
    try {
      return stripCr(decoder.decode(bytes));
    } catch {
      throw new JsonlDecodeError(line);
    }
  };
  /** Adds `part` to the current line; false once the line is over the limit. */
  const append = (part: Uint8Array): boolean => {
    if (overBytes >= 0) {
      overBytes += part.length;
      return false;
    }
    const need = heldBytes + part.length;
    if (need > limit) {
      overBytes = need;
      heldBytes = 0;
      return false;
    }
    if (need > held.length) {
      const grown = new Uint8Array(Math.min(limit, Math.max(need, 2 * held.length, 4096)));
      grown.set(held.subarray(0, heldBytes));
      held = grown;
    }
    held.set(part, heldBytes);
    heldBytes = need;
    return true;
  };
  /** The text of the line that ends with `tail` (the part of it in the current chunk). */
  const endLine = (tail: Uint8Array): string => {
    line++;
    let text: string;
    if (heldBytes === 0 && overBytes < 0 && tail.length <= limit) {
      text = decode(tail); // the whole line is in one chunk: decoded in place
    } else {
      append(tail);
      if (overBytes >= 0) throw new JsonlLineTooLongError(line, overBytes, limit);
      text = decode(held.subarray(0, heldBytes));
    }
    heldBytes = 0;
    return text;
  };
  try {
    while (true) {
      const { done, value } = await reader.read();
      if (done) {
        finished = true;
        break;
      }
      let from = 0;
      let nl: number;
      while ((nl = value.indexOf(0x0a, from)) >= 0) {
        const text = endLine(value.subarray(from, nl));
        from = nl + 1;
        if (text.trim() !== "") yield { line, text };
      }
      if (from < value.length) append(value.subarray(from));
    }
    if (heldBytes > 0 || overBytes >= 0) {
      const text = endLine(new Uint8Array(0));
      if (text.trim() !== "") yield { line, text };
    }
  } finally {
    // The consumer stopped early (a bad line, or it only wanted a first look): cancel the
    // source so it is closed now (e.g. a Deno.FsFile's readable closes its file), instead of
    // staying open until the end of the process.
    if (!finished) await reader.cancel();
    reader.releaseLock();
  }
}

/** Bytes read at a time from a byte stream. */
const READ_CHUNK_BYTES = 1 << 16;

/**
 * Reads a stream chunk by chunk. A byte stream (a file's `readable`, `Blob.stream()`, a fetch
 * body) is read into one reused buffer, so reading a large file leaves no trail of chunk garbage
 * behind; any other stream hands over its own chunks. A chunk is valid until the next read.
 */
class ChunkReader {
  #byob: ReadableStreamBYOBReader | null = null;
  #plain: ReadableStreamDefaultReader<Uint8Array> | null = null;
  #buffer: ArrayBuffer | null = null;

  constructor(stream: ReadableStream<Uint8Array>) {
    try {
      this.#byob = stream.getReader({ mode: "byob" });
      this.#buffer = new ArrayBuffer(READ_CHUNK_BYTES);
    } catch {
      this.#plain = stream.getReader();
    }
  }

  async read(): Promise<ReadableStreamReadResult<Uint8Array>> {
    if (!this.#byob) return await this.#plain!.read();
    const r = await this.#byob.read(new Uint8Array(this.#buffer!, 0, READ_CHUNK_BYTES));
    // The read transfers the buffer; its new owner is the view it returned.
    if (r.value) this.#buffer = r.value.buffer as ArrayBuffer;
    return r.done ? { done: true, value: undefined } : { done: false, value: r.value! };
  }

  async cancel(): Promise<void> {
    await (this.#byob ?? this.#plain)!.cancel().catch(() => {});
  }

  releaseLock(): void {
    (this.#byob ?? this.#plain)!.releaseLock();
  }
}

function stripCr(s: string): string {
  return s.endsWith("\r") ? s.slice(0, -1) : s;
}
