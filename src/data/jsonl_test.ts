import { deepStrictEqual as assertEquals, ok } from "node:assert/strict";
import {
  JsonlDecodeError,
  type JsonlLine,
  jsonlLines,
  JsonlLineTooLongError,
  type JsonlOptions,
} from "./jsonl.ts";

/** A stream that delivers `text` in chunks of `size` bytes, to exercise chunk boundaries. */
function chunked(text: string, size: number): ReadableStream<Uint8Array> {
  const bytes = new TextEncoder().encode(text);
  let at = 0;
  return new ReadableStream({
    pull(controller) {
      if (at >= bytes.length) return controller.close();
      controller.enqueue(bytes.slice(at, at + size));
      at += size;
    },
  });
}

/** {@link chunked} as a byte stream, which the reader reads into its own reused buffer. */
function chunkedBytes(text: string, size: number): ReadableStream<Uint8Array> {
  const bytes = new TextEncoder().encode(text);
  let at = 0;
  return new ReadableStream({
    type: "bytes",
    pull(controller) {
      if (at >= bytes.length) {
        controller.close();
        controller.byobRequest?.respond(0);
        return;
      }
      controller.enqueue(bytes.slice(at, at + size));
      at += size;
    },
  });
}

async function collect(s: ReadableStream<Uint8Array>) {
  const out = [];
  for await (const l of jsonlLines(s)) out.push(l);
  return out;
}

Deno.test("jsonlLines numbers lines, skips blanks, handles CRLF and a missing final newline", async () => {
  const text = '{"a":1}\r\n\n  \n{"b":"é"}\n{"c":3}';
  for (const size of [1, 2, 3, 7, 1000]) {
    assertEquals(await collect(chunked(text, size)), [
      { line: 1, text: '{"a":1}' },
      { line: 4, text: '{"b":"é"}' },
      { line: 5, text: '{"c":3}' },
    ]);
  }
});

Deno.test("jsonlLines yields nothing for an empty stream", async () => {
  assertEquals(await collect(chunked("", 4)), []);
  assertEquals(await collect(chunked("\n\n", 4)), []);
});

Deno.test("jsonlLines cancels its source when the consumer stops early", async () => {
  // Without the cancel, a file opened for a first look would stay open after the loop ends.
  let cancelled = false;
  let pulls = 0;
  const source = new ReadableStream<Uint8Array>({
    pull(controller) {
      pulls++;
      controller.enqueue(new TextEncoder().encode(`{"n":${pulls}}\n`));
    },
    cancel() {
      cancelled = true;
    },
  });
  for await (const l of jsonlLines(source)) {
    assertEquals(l, { line: 1, text: '{"n":1}' });
    break;
  }
  assertEquals(cancelled, true);
});

Deno.test("jsonlLines does not cancel a stream it read to the end", async () => {
  let cancelled = false;
  const bytes = new TextEncoder().encode('{"a":1}\n');
  const source = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(bytes);
      controller.close();
    },
    cancel() {
      cancelled = true;
    },
  });
  assertEquals((await collect(source)).length, 1);
  assertEquals(cancelled, false);
});

/** The lines read from `s` until its end or an error, and that error. */
async function readUntilError(s: ReadableStream<Uint8Array>, options?: JsonlOptions) {
  const lines: JsonlLine[] = [];
  let error: unknown = undefined;
  try {
    for await (const l of jsonlLines(s, options)) lines.push(l);
  } catch (e) {
    error = e;
  }
  return { lines, error };
}

/** Lines (or the error) of `text` read in chunks of `size` bytes with a line limit. */
async function collectLimited(text: string, size: number, maxLineBytes: number) {
  const { lines, error } = await readUntilError(chunked(text, size), { maxLineBytes });
  return error === undefined ? lines : [...lines, error];
}

Deno.test("jsonlLines decodes a character split across chunks of 1..7 bytes whole, on every line ending", async () => {
  // 2-, 3- and 4-byte characters, CRLF, a blank line, a whitespace-only line, no final newline.
  const text = '{"a":"é"}\r\n\n{"b":"語"}\n \t\n{"c":"🦙x🦙"}\r\n{"d":"ü"}';
  const want = [
    { line: 1, text: '{"a":"é"}' },
    { line: 3, text: '{"b":"語"}' },
    { line: 5, text: '{"c":"🦙x🦙"}' },
    { line: 6, text: '{"d":"ü"}' },
  ];
  for (let size = 1; size <= 7; size++) {
    for (const source of [chunked, chunkedBytes]) {
      const what = `${source.name}, chunks of ${size}`;
      assertEquals(await collect(source(text, size)), want, what);
      // The same, ending with a newline and then with CRLF.
      assertEquals(await collect(source(text + "\n", size)), want, what);
      assertEquals(await collect(source(text + "\r\n", size)), want, what);
    }
  }
  // A file's stream (a byte stream, read in 64 KiB pieces into one buffer), across many reads.
  const path = await Deno.makeTempFile({ suffix: ".jsonl" });
  try {
    const lines = Array.from({ length: 5000 }, (_, i) => `{"i":${i},"t":"${"語".repeat(i % 50)}"}`);
    await Deno.writeTextFile(path, lines.join("\n"));
    const got = await collect((await Deno.open(path)).readable);
    assertEquals(got.map((l) => l.text), lines);
    assertEquals(got[4999].line, 5000);
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("jsonlLines reports invalid UTF-8 at its own line, whatever the chunking", async () => {
  const bytes = new Uint8Array([
    ...new TextEncoder().encode('{"a":1}\n{"b":"'),
    0xe8, // the first byte of a 3-byte character, cut short by the quote
    ...new TextEncoder().encode('"}\n{"c":3}\n'),
  ]);
  for (let size = 1; size <= 7; size++) {
    let at = 0;
    const s = new ReadableStream<Uint8Array>({
      pull(c) {
        if (at >= bytes.length) return c.close();
        c.enqueue(bytes.slice(at, at += size));
      },
    });
    const { lines, error: e } = await readUntilError(s);
    assertEquals(lines.map((l) => l.line), [1]);
    ok(e instanceof JsonlDecodeError && e.line === 2, `chunks of ${size}`);
  }
});

Deno.test("a line over maxLineBytes is an error naming its line and its whole size; one at the limit is read", async () => {
  const atLimit = '{"t":"' + "x".repeat(14) + '"}'; // 22 bytes
  const over = '{"t":"' + "y".repeat(40) + '"}'; // 48 bytes
  for (let size = 1; size <= 7; size++) {
    const read = await collectLimited(`${atLimit}\n\n${over}\n${atLimit}\n`, size, 22);
    assertEquals(read.length, 2, `chunks of ${size}`);
    assertEquals(read[0], { line: 1, text: atLimit });
    const e = read[1];
    ok(e instanceof JsonlLineTooLongError, `chunks of ${size}: ${e}`);
    assertEquals([e.line, e.bytes, e.limit], [3, 48, 22]);
    assertEquals(e.message, "line is 48 bytes (limit 22 bytes, --max-line-bytes)");
    // The last line, without its newline, is measured as well.
    const last = await collectLimited(`${atLimit}\n${over}`, size, 22);
    ok(last[1] instanceof JsonlLineTooLongError && last[1].line === 2 && last[1].bytes === 48);
  }
  // Sizes from 1 MB up are in MB.
  const big = new JsonlLineTooLongError(7, 52_428_800, 8 << 20);
  assertEquals(big.message, "line is 50.0 MB (limit 8.0 MB, --max-line-bytes)");
});

Deno.test("a 64 MiB line over a 64 KiB limit is measured to its end and refused before the next line", async () => {
  // 64 MiB of one line, produced on demand (the bench measures that it is not kept).
  const chunk = new Uint8Array(1 << 20).fill(0x61);
  let sent = 0;
  const source = new ReadableStream<Uint8Array>({
    pull(c) {
      if (sent === 64) {
        c.enqueue(new TextEncoder().encode('\n{"a":1}\n'));
        return c.close();
      }
      sent++;
      c.enqueue(chunk);
    },
  });
  const { lines, error: e } = await readUntilError(source, { maxLineBytes: 1 << 16 });
  assertEquals(lines, []);
  ok(e instanceof JsonlLineTooLongError);
  assertEquals([e.line, e.bytes], [1, 64 << 20]);
});

Deno.test("maxLineBytes must be a positive integer", async () => {
  for (const bad of [0, -1, 1.5, NaN]) {
    const { error } = await readUntilError(chunked("{}", 1), { maxLineBytes: bad });
    ok(error instanceof RangeError, String(bad));
  }
});
