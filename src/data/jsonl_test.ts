import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { jsonlLines } from "./jsonl.ts";

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
