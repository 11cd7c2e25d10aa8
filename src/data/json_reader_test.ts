import { deepStrictEqual, ok, rejects, strictEqual } from "node:assert/strict";
import { JsonReader, JsonSyntaxError, type ReadInto } from "./json_reader.ts";

const DOC = JSON.stringify({
  vocab: { "a": 0, "Ġb": 1, '\u00e9\n"\\': 2, "😀": 3, "\ud83d\ude00x": 4 },
  merges: [["a", "Ġb"], "x y"],
  n: [-1.5e3, 0, 12345678901234567, true, false, null],
  nested: { deep: [[{}], []] },
});

/** Reads DOC through `make(chunkSize)` and returns what a full walk sees. */
async function walk(r: JsonReader): Promise<unknown> {
  const out: Record<string, unknown> = {};
  await r.step(() => r.enterObject(), 1);
  while (await r.step(() => r.nextKey(), 1)) {
    const key = r.key;
    if (key === "vocab") {
      const entries: [string, number][] = [];
      await r.step(() => r.enterObject(), 1);
      await r.each(() => {
        if (!r.nextKeyBytes()) return false;
        const text = new TextDecoder().decode(r.scratch.subarray(0, r.scratchLen));
        entries.push([text, r.readNumber()]);
        return true;
      }, 8);
      out[key] = entries;
    } else if (key === "nested") {
      await r.skipLarge();
      out[key] = "skipped";
    } else out[key] = await r.step(() => r.readValue(), 1);
  }
  return out;
}

function chunked(bytes: Uint8Array, size: number): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream({
    pull(c) {
      if (at >= bytes.length) return c.close();
      c.enqueue(bytes.slice(at, at + size));
      at += size;
    },
  });
}

function readInto(bytes: Uint8Array, size: number): ReadInto {
  let at = 0;
  return {
    read(p) {
      if (at >= bytes.length) return Promise.resolve(null);
      const n = Math.min(size, p.length, bytes.length - at);
      p.set(bytes.subarray(at, at + n));
      at += n;
      return Promise.resolve(n);
    },
  };
}

Deno.test("JsonReader: every chunk size, stream or read-into, gives what JSON.parse gives", async () => {
  const bytes = new TextEncoder().encode(DOC);
  const parsed = JSON.parse(DOC);
  const expected = {
    vocab: Object.entries(parsed.vocab),
    merges: parsed.merges,
    n: parsed.n,
    nested: "skipped",
  };
  deepStrictEqual(await walk(new JsonReader(bytes, "doc")), expected);
  for (const size of [1, 2, 3, 5, 7, 64]) {
    deepStrictEqual(await walk(new JsonReader(chunked(bytes, size), "doc")), expected);
    deepStrictEqual(await walk(new JsonReader(readInto(bytes, size), "doc")), expected);
  }
});

Deno.test("JsonReader: malformed JSON is a JsonSyntaxError naming the byte", async () => {
  for (const bad of ['{"a" 1}', '{"a": [1 2]}', '{"a": "\\uZZZZ"}', '{"a": ', "[1,"]) {
    const r = new JsonReader(new TextEncoder().encode(bad), "bad.json");
    await rejects(
      () => r.step(() => r.readValue()),
      (e) => e instanceof JsonSyntaxError && /at byte \d+/.test(e.message),
    );
  }
});

Deno.test("JsonReader: a value larger than the window grows the buffer", async () => {
  const big = "x".repeat(300_000);
  const r = new JsonReader(chunked(new TextEncoder().encode(JSON.stringify([big, 1])), 4096), "b");
  strictEqual(JSON.stringify(await r.step(() => r.readValue(), 16)), JSON.stringify([big, 1]));
});

Deno.test("JsonReader: a string that begins with U+FEFF keeps it, as a key and as a value", async () => {
  const doc = JSON.stringify({ "\ufeff//": ["\ufeff", "a\ufeff"] });
  const r = new JsonReader(new TextEncoder().encode(doc), "bom.json");
  await r.step(() => r.enterObject(), 1);
  strictEqual(await r.step(() => r.nextKey(), 1), true);
  strictEqual(r.key, "\ufeff//");
  deepStrictEqual(await r.step(() => r.readValue(), 1), ["\ufeff", "a\ufeff"]);
});

Deno.test("JsonReader.skipLarge: a value far larger than the window is skipped with a buffer of about the window", async () => {
  // A 6,000-entry map of small objects (tokenizer_config.json's added_tokens_decoder), then a
  // member larger than the window (a long array of strings), then what must still be read.
  const decoder: Record<string, unknown> = {};
  for (let i = 0; i < 6000; i++) {
    decoder[String(i)] = { content: `<unused${i}>`, lstrip: false, special: i % 2 === 0 };
  }
  const doc = JSON.stringify({
    added_tokens_decoder: decoder,
    long: [Array.from({ length: 3000 }, (_, i) => `w${i}`), { "}": "]" }],
    eos_token: "<eos>",
  });
  const bytes = new TextEncoder().encode(doc);
  const window = 4096;
  for (const size of [1000, 4096, 70_000]) {
    for (const source of [chunked(bytes, size), readInto(bytes, size)]) {
      const r = new JsonReader(source, "config.json");
      await r.step(() => r.enterObject(), 16);
      const seen: [string, unknown][] = [];
      while (await r.step(() => r.nextKey(), 1024)) {
        const key = r.key;
        if (key === "eos_token") seen.push([key, await r.step(() => r.readValue())]);
        else {
          await r.skipLarge(window);
          seen.push([key, "skipped"]);
        }
      }
      deepStrictEqual(seen, [
        ["added_tokens_decoder", "skipped"],
        ["long", "skipped"],
        ["eos_token", "<eos>"],
      ]);
      // The buffer stays about the default 64 KB (or a chunk, where one is larger), never the
      // skipped value's 400 KB.
      const bound = 2 * Math.max(1 << 16, size);
      ok(r.buf.length <= bound, `buffer ${r.buf.length} bytes for ${bytes.length}`);
    }
  }
});
