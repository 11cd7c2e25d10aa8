import { deepStrictEqual, strictEqual, throws } from "node:assert/strict";
import { TokenRows } from "./token_rows.ts";

const plain = (rows: TokenRows) =>
  Array.from(rows, (r) => [Array.from(r.inputIds), Array.from(r.labels)]);

Deno.test("TokenRows keeps rows in order as views, parts end to end", () => {
  const rows = new TokenRows();
  rows.push([1, 2, 3], [-100, 2, 3]);
  rows.pushParts([
    { inputIds: Int32Array.of(4, 5), labels: Int32Array.of(4, 5) },
    { inputIds: [6], labels: [-100] },
  ]);
  strictEqual(rows.length, 2);
  strictEqual(rows.tokenCount, 6);
  strictEqual(rows.maxRowLength, 3);
  strictEqual(rows.rowLength(1), 3);
  deepStrictEqual(plain(rows), [[[1, 2, 3], [-100, 2, 3]], [[4, 5, 6], [4, 5, -100]]]);
  throws(() => rows.row(2), /row 2 of 2/);
  throws(() => rows.push([1, 2], [1]), /1 labels for 2 ids/);
});

Deno.test("TokenRows.bytesHeld counts its typed arrays; compact() gives back the spare capacity", () => {
  // Rows of 1..300 tokens: 45,150 tokens, so several blocks (the first holds 4096 tokens).
  const rows = new TokenRows();
  const want: number[][] = [];
  for (let n = 1; n <= 300; n++) {
    const ids = Array.from({ length: n }, (_, i) => n * 1000 + i);
    rows.push(ids, ids.map((x) => -x));
    want.push(ids);
  }
  rows.compact();
  strictEqual(rows.tokenCount, 45150);
  // Ids and labels (4 bytes each per token, plus at most a row's worth of tail left in a block
  // when the next row did not fit), and 12 bytes of index per row.
  const indexBytes = 300 * 12;
  const exact = 45150 * 8 + indexBytes;
  strictEqual(rows.bytesHeld >= exact, true);
  strictEqual(rows.bytesHeld - exact < 8 * 300 * 4, true, `${rows.bytesHeld} vs ${exact}`);
  deepStrictEqual(Array.from(rows, (r) => Array.from(r.inputIds)), want);
  deepStrictEqual(Array.from(rows, (r) => Array.from(r.labels)), want.map((r) => r.map((x) => -x)));
  // One block only (all rows fit the first), labels its ids: 4 bytes and a bit a token, the index.
  const small = TokenRows.from([{ inputIds: Int32Array.of(1, 2), labels: Int32Array.of(1, 2) }]);
  strictEqual(small.bytesHeld, 2 * 4 + 1 + 12);
  strictEqual(TokenRows.from([]).bytesHeld, 0);
});

Deno.test("labels that are the id or -100 are held as bits; another label switches its block to full labels", () => {
  const rows = new TokenRows();
  const want: number[][][] = [];
  const add = (ids: number[], labels: number[]) => {
    rows.push(ids, labels);
    want.push([ids, labels]);
  };
  // 13 tokens of bits (across byte boundaries), then a row whose label 7 is neither 9 nor -100.
  add([5, 6, 7, 8, 9], [-100, -100, 7, 8, 9]);
  add([1, 2, 3, 4, 5, 6, 7, 8], [1, -100, 3, -100, 5, -100, 7, -100]);
  rows.compact();
  strictEqual(rows.bytesHeld, 13 * 4 + 2 + 2 * 12);
  deepStrictEqual(plain(rows), want);
  add([3, 9], [-100, 7]);
  add([4, 4, 4], [4, -100, 4]);
  rows.compact();
  deepStrictEqual(plain(rows), want);
  // The new block holds every label: 4 bytes of id and 4 of label a token.
  strictEqual(rows.bytesHeld, 13 * 4 + 2 + 5 * 8 + 4 * 12);
  // The switch in the middle of a block keeps the labels of the rows already in it.
  const mid = new TokenRows();
  mid.push([5, 6, 7, 8, 9, 10, 11, 12, 13], [-100, 6, -100, 8, 9, -100, 11, 12, -100]);
  mid.push([1, 2], [1, 5]);
  mid.push([3, 4], [-100, 4]);
  mid.compact();
  deepStrictEqual(plain(mid), [
    [[5, 6, 7, 8, 9, 10, 11, 12, 13], [-100, 6, -100, 8, 9, -100, 11, 12, -100]],
    [[1, 2], [1, 5]],
    [[3, 4], [-100, 4]],
  ]);
  strictEqual(mid.bytesHeld, 13 * 8 + 3 * 12);
});

Deno.test("a row longer than a block gets a block of its own; rows can follow compact()", () => {
  const rows = new TokenRows();
  const long = Array.from({ length: 5000 }, (_, i) => i);
  rows.push([7, 8], [7, 8]);
  rows.push(long, long);
  rows.compact();
  rows.push([9, 10], [9, 10]);
  rows.compact();
  deepStrictEqual(Array.from(rows, (r) => r.inputIds.length), [2, 5000, 2]);
  deepStrictEqual(Array.from(rows.row(1).labels), long);
  deepStrictEqual(Array.from(rows.row(2).inputIds), [9, 10]);
  strictEqual(rows.maxRowLength, 5000);
});
