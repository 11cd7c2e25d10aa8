/**
 * Streams the lines of a JSON Lines file from a byte stream (Web Streams, so it runs the same in
 * Deno, browsers and edge runtimes). Blank lines are skipped; line numbers are 1-based and count
 * every line, so errors can point at the exact line of the file.
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

/** One non-blank line of a JSONL file. */
export interface JsonlLine {
  /** 1-based line number in the file. */
  line: number;
  /** The line without its terminator (and without a trailing `\r`). */
  text: string;
}

/** A line of the stream is not valid UTF-8. */
export class JsonlDecodeError extends Error {
  constructor(readonly line: number) {
    super("not valid UTF-8");
    this.name = "JsonlDecodeError";
  }
}

/**
 * Yields every non-blank line of the UTF-8 byte stream `bytes`. Lines are split on bytes and each
 * is decoded on its own, so invalid UTF-8 is reported at its own line ({@link JsonlDecodeError}).
 * The generator owns the stream: if the consumer stops before the end (break, throw), the stream
 * is cancelled.
 */
export async function* jsonlLines(bytes: ReadableStream<Uint8Array>): AsyncGenerator<JsonlLine> {
  const decoder = new TextDecoder("utf-8", { fatal: true });
  const reader = bytes.getReader();
  // The bytes of the line being read, when it spans chunks.
  let pending: Uint8Array[] = [];
  let line = 0;
  let finished = false;
  const decode = (parts: Uint8Array[]): string => {
    const whole = parts.length === 1 ? parts[0] : concat(parts);
    try {
      return stripCr(decoder.decode(whole));
    } catch {
      throw new JsonlDecodeError(line);
    }
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
        line++;
        pending.push(value.subarray(from, nl));
        const text = decode(pending);
        pending = [];
        from = nl + 1;
        if (text.trim() !== "") yield { line, text };
      }
      if (from < value.length) pending.push(value.slice(from));
    }
    line++;
    const last = pending.length ? decode(pending) : "";
    if (last.trim() !== "") yield { line, text: last };
  } finally {
    // The consumer stopped early (a bad line, or it only wanted a first look): cancel the
    // source so it is closed now (e.g. a Deno.FsFile's readable closes its file), instead of
    // staying open until the end of the process.
    if (!finished) await reader.cancel().catch(() => {});
    reader.releaseLock();
  }
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function stripCr(s: string): string {
  return s.endsWith("\r") ? s.slice(0, -1) : s;
}
