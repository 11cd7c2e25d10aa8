import { deepStrictEqual, strictEqual } from "node:assert/strict";
import { BpeModelBuilder } from "./bpe_model.ts";

const enc = new TextEncoder();

function model(tokens: string[], merges: [string, string][]) {
  const b = new BpeModelBuilder();
  tokens.forEach((t, id) => b.addToken(enc.encode(t), id));
  for (const [l, r] of merges) b.addMerge(enc.encode(l), enc.encode(r));
  return b.build();
}

/** Plain BPE over strings: lowest rank first, leftmost among equals. */
function reference(word: string[], merges: [string, string][]): string[] {
  const w = word.slice();
  for (;;) {
    let best = -1, at = -1;
    for (let i = 0; i + 1 < w.length; i++) {
      const r = merges.findIndex(([a, b]) => a === w[i] && b === w[i + 1]);
      if (r >= 0 && (best < 0 || r < best)) [best, at] = [r, i];
    }
    if (best < 0) return w;
    w.splice(at, 2, w[at] + w[at + 1]);
  }
}

Deno.test("BpeModel.merge equals plain BPE (rank order, leftmost ties) on random words", () => {
  const tokens = ["a", "b", "c", "ab", "bc", "abc", "cc", "ccc", "bb", "abb"];
  const merges: [string, string][] = [
    ["b", "c"],
    ["a", "b"],
    ["c", "c"],
    ["a", "bc"],
    [
      "b",
      "b",
    ],
    ["cc", "c"],
    ["ab", "b"],
  ];
  const m = model(tokens, merges);
  let seed = 7;
  for (let trial = 0; trial < 2000; trial++) {
    const n = 1 + (trial % 12);
    const word: string[] = [];
    for (let i = 0; i < n; i++) {
      seed = (seed * 1103515245 + 12345) >>> 0;
      word.push("abc"[seed % 3]);
    }
    const ids = Int32Array.from(word, (c) => tokens.indexOf(c));
    const got = m.merge(ids, n).map((id) => tokens[id]);
    deepStrictEqual(got, reference(word, merges), word.join(""));
  }
});

Deno.test("BpeModel: a later entry for the same text takes it over; lookups and texts", () => {
  const b = new BpeModelBuilder();
  b.addToken(enc.encode("x"), 0);
  b.addToken(enc.encode("y"), 1);
  b.addToken(enc.encode("xy"), 2);
  b.addMerge(enc.encode("x"), enc.encode("y"));
  b.addToken(enc.encode("xy"), 5); // an added token over the model's own entry
  const m = b.build();
  strictEqual(m.size, 6);
  strictEqual(m.lookup(enc.encode("xy"), 0, 2), 5);
  strictEqual(m.lookup(enc.encode("z"), 0, 1), -1);
  deepStrictEqual(m.merge(Int32Array.of(0, 1), 2), [5]);
  strictEqual(new TextDecoder().decode(m.text(2)!), "xy");
  strictEqual(m.text(3), null);
  deepStrictEqual(m.merge(Int32Array.of(0, -121, 1), 3), [0, -121, 1]);
});

Deno.test("BpeModelBuilder: the arrays it grows out of are freed as it goes, not left to a collection", () => {
  // 200k tokens and merges: the tables grow through many copies on the way.
  const n = 200_000;
  const text = (i: number) => enc.encode(`t${i.toString(36)}`);
  const before = Deno.memoryUsage().external;
  const b = new BpeModelBuilder();
  for (let i = 0; i < n; i++) b.addToken(text(i), i);
  for (let i = 0; i + 1 < n; i += 2) b.addMerge(text(i), text(i + 1));
  const m = b.build();
  const grew = Deno.memoryUsage().external - before;
  strictEqual(m.lookup(text(12345), 0, text(12345).length), 12345);
  // What is held is the model's tables, spare capacity included (`bytes`); the copies grown out
  // of, kept until the engine collects, would add about half as much again.
  if (grew > 1.15 * m.bytes) {
    throw new Error(`external memory grew ${grew} bytes for ${m.bytes} of tables`);
  }
});
