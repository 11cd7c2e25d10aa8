import { deepStrictEqual, rejects, strictEqual } from "node:assert/strict";
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
