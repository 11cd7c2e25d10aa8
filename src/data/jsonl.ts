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

/**
 * Yields every non-blank line of the UTF-8 byte stream `bytes`. The generator owns the stream: if
 * the consumer stops before the end (break, throw), the stream is cancelled.
 */
export async function* jsonlLines(bytes: ReadableStream<Uint8Array>): AsyncGenerator<JsonlLine> {
  // The cast: lib.dom types TextDecoderStream's writable side as WritableStream<BufferSource>.
  const decoder = new TextDecoderStream("utf-8", { fatal: true });
  const reader = bytes.pipeThrough(decoder as unknown as TransformStream<Uint8Array, string>)
    .getReader();
  let pending = "";
  let line = 0;
  let finished = false;
  try {
    while (true) {
      const { done, value } = await reader.read();
      if (done) {
        finished = true;
        break;
      }
      pending += value;
      let nl: number;
      while ((nl = pending.indexOf("\n")) >= 0) {
        line++;
        const text = stripCr(pending.slice(0, nl));
        pending = pending.slice(nl + 1);
        if (text.trim() !== "") yield { line, text };
      }
    }
    line++;
    const last = stripCr(pending);
    if (last.trim() !== "") yield { line, text: last };
  } finally {
    // The consumer stopped early (a bad line, or it only wanted a first look): cancel the
    // pipeline so the source is closed now (e.g. a Deno.FsFile's readable closes its file),
    // instead of staying open until the end of the process.
    if (!finished) await reader.cancel().catch(() => {});
    reader.releaseLock();
  }
}

function stripCr(s: string): string {
  return s.endsWith("\r") ? s.slice(0, -1) : s;
}
