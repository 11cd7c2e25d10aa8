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
