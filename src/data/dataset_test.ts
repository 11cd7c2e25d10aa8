import { deepStrictEqual, notDeepStrictEqual, rejects, strictEqual } from "node:assert/strict";
import {
  BatchSource,
  buildRows,
  countTokens,
  evalBatches,
  loadExamples,
  paddedLength,
} from "./dataset.ts";
import type { TokenizedExample } from "./example.ts";

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
