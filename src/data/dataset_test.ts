import { deepStrictEqual, notDeepStrictEqual, ok, rejects, strictEqual } from "node:assert/strict";
import {
  BatchSource,
  buildRows,
  countTokens,
  evalBatches,
  loadExamples,
  loadRows,
  paddedLength,
  type TokenizerRequest,
} from "./dataset.ts";
import { DataError, parseExampleLine, type TokenizedExample } from "./example.ts";
import type { TextTokenizer } from "./tokenizer.ts";
import { bundledQwenTokenizerDir, loadTokenizerDir } from "../deno/tokenizer.ts";

function stream(text: string): ReadableStream<Uint8Array> {
  return new Blob([new TextEncoder().encode(text)]).stream();
}

function ex(ids: number[], labels = ids): TokenizedExample {
  return { inputIds: Int32Array.from(ids), labels: Int32Array.from(labels) };
}

Deno.test("loadExamples reads every line and reports the first bad one with file:line", async () => {
  const good = '{"input_ids":[1,2,3]}\n\n{"input_ids":[4,5]}\n';
  const exs = await loadExamples(stream(good), "a.jsonl", null, 10);
  deepStrictEqual(exs.map((e) => Array.from(e.inputIds)), [[1, 2, 3], [4, 5]]);
  await rejects(
    loadExamples(stream(good + '{"input_ids":[4]\n'), "a.jsonl", null, 10),
    /^DataError: a\.jsonl:4: not valid JSON/,
  );
  await rejects(loadExamples(stream("\n"), "e.jsonl", null, 10), /e\.jsonl:1: no examples/);
});

Deno.test("greedy packing keeps whole examples together up to seqLen", () => {
  const { rows, truncated, dropped } = buildRows(
    [ex([1, 2, 3]), ex([4, 5]), ex([6, 7, 8, 9]), ex([1, 2, 3, 4, 5, 6, 7])],
    5,
    "greedy",
  );
  deepStrictEqual(Array.from(rows, (r) => Array.from(r.inputIds)), [
    [1, 2, 3, 4, 5],
    [6, 7, 8, 9],
    [1, 2, 3, 4, 5],
  ]);
  strictEqual(truncated, 1);
  strictEqual(dropped, 0);
});

Deno.test("rows with nothing to train on after truncation are dropped", () => {
  const prompt = ex([1, 2, 3, 4, 5, 6], [-100, -100, -100, -100, 5, 6]);
  const { rows, dropped } = buildRows([prompt, ex([7, 8])], 4, "none");
  strictEqual(dropped, 1);
  deepStrictEqual(Array.from(rows, (r) => Array.from(r.inputIds)), [[7, 8]]);
});

Deno.test("BatchSource pads, shuffles per epoch by seed, and resumes from a position", () => {
  const rows = Array.from({ length: 7 }, (_, i) => ex([i + 1, i + 1, i + 1].slice(0, 2 + (i % 2))));
  const options = { batchSize: 2, seqLen: 3, padId: 0, seed: 42 };
  const a = new BatchSource(rows, options);
  const firstRows = (b: { inputIds: Int32Array }) => [b.inputIds[0], b.inputIds[3]];
  const seen: number[] = [];
  for (let i = 0; i < 7; i++) seen.push(...firstRows(a.next()));
  // Two epochs' worth (14 rows): each epoch is a permutation of all 7 rows.
  deepStrictEqual(seen.slice(0, 7).toSorted(), [1, 2, 3, 4, 5, 6, 7]);
  deepStrictEqual(seen.slice(7).toSorted(), [1, 2, 3, 4, 5, 6, 7]);
  notDeepStrictEqual(seen.slice(0, 7), seen.slice(7)); // epochs differ
  notDeepStrictEqual(a.order(0), new BatchSource(rows, { ...options, seed: 43 }).order(0));
  // Resume: a fresh source seeked to a saved position serves the same batches.
  const b = new BatchSource(rows, options);
  for (let i = 0; i < 3; i++) b.next();
  const saved = b.position;
  deepStrictEqual(saved, { epoch: 0, index: 6 });
  const c = new BatchSource(rows, options);
  c.seek(saved);
  for (let i = 0; i < 4; i++) deepStrictEqual(c.next(), b.next());
  // Padding: ids padId, labels -100.
  const batch = new BatchSource([ex([5, 6])], { ...options, batchSize: 1 }).next();
  deepStrictEqual(Array.from(batch.inputIds), [5, 6, 0]);
  deepStrictEqual(Array.from(batch.labels), [5, 6, -100]);
  strictEqual(countTokens(batch, 0), 2);
});

Deno.test("evalBatches covers every row once, in order", () => {
  const rows = [ex([1, 2]), ex([3, 4, 5]), ex([6, 7])];
  const bs = evalBatches(rows, 2, paddedLength(rows, 256), 0);
  deepStrictEqual(bs.map((b) => [b.batchSize, b.seqLen]), [[2, 3], [1, 3]]);
  deepStrictEqual(Array.from(bs[1].inputIds), [6, 7, 0]);
});

/** A stream of `bytes` in chunks of `size` bytes. */
function chunks(bytes: Uint8Array, size: number): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream({
    pull(c) {
      if (at >= bytes.length) return c.close();
      c.enqueue(bytes.slice(at, at += size));
    },
  });
}

/** The whole file decoded at once and split into lines: what the stream must reproduce. */
function wholeFileExamples(
  bytes: Uint8Array,
  file: string,
  tok: TextTokenizer | null,
  vocabSize: number,
): TokenizedExample[] {
  const text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  const out: TokenizedExample[] = [];
  text.split("\n").forEach((raw, i) => {
    const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
    if (line.trim() !== "") out.push(parseExampleLine(line, file, i + 1, tok, vocabSize));
  });
  return out;
}

const plainRows = (rows: Iterable<TokenizedExample>) =>
  Array.from(rows, (r) => [Array.from(r.inputIds), Array.from(r.labels)]);

Deno.test("streamed rows equal the whole-file result: demo chat data and edge cases, chunks of 1..7 bytes", async () => {
  const tok = await loadTokenizerDir(bundledQwenTokenizerDir());
  const V = tok.vocabSize;
  const demo = await Deno.readFile(new URL("../../examples/data/demo_chat.jsonl", import.meta.url));
  const edge = new TextEncoder().encode(
    [
      JSON.stringify({ text: "Grüße aus Köln: 語彙 🦙🦙 and a combining é" }),
      "",
      "   ",
      JSON.stringify({ input_ids: [9707, 4337, 151645], labels: [-100, 4337, 151645] }),
      JSON.stringify({ prompt: "Translate: 猫", completion: " chat 🐈" }),
      JSON.stringify({
        messages: [{ role: "user", content: "¿Qué?" }, { role: "assistant", content: "Ça va ✓" }],
      }),
    ].join("\r\n") + "\n\n" + JSON.stringify({ text: "no final newline ß" }),
  );
  for (const [name, bytes] of [["demo_chat.jsonl", demo], ["edge.jsonl", edge]] as const) {
    const whole = wholeFileExamples(bytes, name, tok, V);
    for (const [seqLen, packing] of [[256, "greedy"], [48, "greedy"], [48, "none"]] as const) {
      const want = buildRows(whole, seqLen, packing);
      for (let size = 1; size <= 7; size++) {
        const got = await loadRows(chunks(bytes, size), name, {
          tokenizer: tok,
          vocabSize: V,
          seqLen,
          packing,
        });
        const what = `${name} seq ${seqLen} ${packing}, chunks of ${size}`;
        deepStrictEqual(plainRows(got.rows), plainRows(want.rows), what);
        deepStrictEqual([got.examples, got.truncated, got.dropped], [
          whole.length,
          want.truncated,
          want.dropped,
        ], what);
        // The planner's figure: 4 bytes of id and one bit of label a token (every label here is
        // its id or -100), plus the index (one block here: nothing spare after compact()).
        const n = got.rows.tokenCount;
        strictEqual(got.rows.bytesHeld, 4 * n + Math.ceil(n / 8) + 12 * got.rows.length, what);
      }
      if (packing === "none") ok(want.rows.length > 4, `${name}: rows to compare`);
    }
    deepStrictEqual(
      plainRows(await loadExamples(chunks(bytes, 3), name, tok, V)),
      plainRows(whole),
      name,
    );
  }
});

Deno.test("the tokenizer is loaded once, in the same pass, at the first well-formed line that needs it", async () => {
  const ids = '{"input_ids":[1,2,3]}';
  const fakeTok = { encode: (t: string) => Array.from(t, (c) => c.charCodeAt(0) % 7) };
  const tok = { ...fakeTok, eosTokenId: 6 } as unknown as TextTokenizer;
  const requests: TokenizerRequest[] = [];
  const loadTokenizer = (r: TokenizerRequest) => (requests.push(r), Promise.resolve(tok));
  const options = { vocabSize: 10, seqLen: 16, packing: "none" as const, loadTokenizer };

  // Pre-tokenized data: never loaded.
  const pre = await loadRows(stream(`${ids}\n${ids}\n`), "pre.jsonl", options);
  strictEqual(pre.tokenizer, null);
  deepStrictEqual(requests, []);

  // Mixed: loaded at line 3 (the first text line), once; the lines before it are kept.
  const mixed = await loadRows(
    stream(`${ids}\n\n{"text":"abc"}\n{"prompt":"a","completion":"b"}\n`),
    "mixed.jsonl",
    options,
  );
  deepStrictEqual(requests, [{ kind: "text", file: "mixed.jsonl", line: 3 }]);
  strictEqual(mixed.tokenizer, tok);
  deepStrictEqual(plainRows(mixed.rows).map((r) => r[0]), [[1, 2, 3], [6, 0, 1, 6], [6, 0, 6]]);

  // A malformed line before the first that needs it: its own error, no load.
  requests.length = 0;
  await rejects(
    loadRows(stream(`${ids}\n{"text":""}\n{"text":"abc"}\n`), "bad.jsonl", options),
    (e) => e instanceof DataError && e.message === 'bad.jsonl:2: "text" must be a non-empty string',
  );
  deepStrictEqual(requests, []);

  // No tokenizer to load: that line's error.
  await rejects(
    loadRows(stream(`${ids}\n{"messages":[{"role":"user","content":"x"}]}\n`), "none.jsonl", {
      ...options,
      loadTokenizer: () => Promise.resolve(null),
    }),
    (e) =>
      e instanceof DataError &&
      e.message ===
        `none.jsonl:2: "messages" data needs the model's tokenizer.json (none was found)`,
  );
});

Deno.test("a data line over --max-line-bytes is FILE:LINE: line is N (limit M, --max-line-bytes)", async () => {
  const long = JSON.stringify({ input_ids: Array.from({ length: 40 }, (_, i) => i % 10) });
  await rejects(
    loadRows(stream(`{"input_ids":[1,2]}\n${long}\n`), "big.jsonl", {
      vocabSize: 10,
      seqLen: 8,
      packing: "greedy",
      maxLineBytes: 64,
    }),
    (e) =>
      e instanceof DataError &&
      e.message === `big.jsonl:2: line is ${long.length} bytes (limit 64 bytes, --max-line-bytes)`,
  );
});
