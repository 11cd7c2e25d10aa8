import { rejects, strictEqual } from "node:assert/strict";
import { loadRowsFile } from "./dataset.ts";

Deno.test("loadRowsFile reads a file into rows and closes it, also after a bad line", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/d.jsonl`;
    await Deno.writeTextFile(path, '{"input_ids":[1,2,3]}\n{"input_ids":[4,5]}\n');
    const options = { vocabSize: 8, seqLen: 8, packing: "greedy" as const };
    const { rows, examples } = await loadRowsFile(path, options);
    strictEqual(examples, 2);
    strictEqual(rows.length, 1);
    await Deno.writeTextFile(path, '{"input_ids":[1,2,3]}\n{"input_ids":[4,9]}\n');
    await rejects(
      loadRowsFile(path, options),
      new RegExp(`^DataError: ${path}:2: input_ids\\[1\\]`),
    );
    // The test sanitizer fails this test if a file stayed open.
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
