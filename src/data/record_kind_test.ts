import { strictEqual, throws } from "node:assert/strict";
import { needsTokenizer, recordKind } from "./record_kind.ts";

Deno.test("recordKind names a well-formed record's shape; needsTokenizer is true for all but input_ids", () => {
  for (
    const [line, kind] of [
      ['{"text":"hi"}', "text"],
      ['{"prompt":"a","completion":"b"}', "prompt"],
      ['{"messages":[{"role":"user","content":"x"}]}', "messages"],
      ['{"input_ids":[1,2],"labels":[-100,2]}', "input_ids"],
      ['{"input_ids":[1,2]}', "input_ids"],
    ] as const
  ) {
    const record = JSON.parse(line);
    strictEqual(recordKind(record), kind, line);
    strictEqual(needsTokenizer(record), kind !== "input_ids", line);
  }
});

Deno.test("a malformed record is its own error from both, never a tokenizer decision", () => {
  // A reader asks needsTokenizer before it builds the tokenizer: a malformed line must keep its
  // own error instead of causing a tokenizer load.
  for (
    const [line, why] of [
      ['{"text":""}', /"text" must be a non-empty string/],
      ['{"prompt":"a"}', /"completion" must be a string/],
      ['{"prompt":"a","completion":""}', /"completion" is empty/],
      ['{"messages":[]}', /"messages" must be a non-empty array/],
      ['{"messages":[{"role":"user"}]}', /messages\[0\] needs a string "content"/],
      ['{"messages":[{"content":"x"}]}', /messages\[0\] needs a string "role"/],
      ['{"input_ids":[1,"x"]}', /"input_ids" must be an array of integers/],
      ['{"input_ids":[1,2],"labels":[1]}', /"labels" has 1 entries/],
      ['{"input_ids":[1,2],"labels":"x"}', /"labels" must be an array of integers/],
      ['{"foo":1}', /unknown record/],
      ["null", /expected a JSON object, got null/],
      ["[1]", /expected a JSON object, got an array/],
      ["3", /expected a JSON object, got number/],
    ] as const
  ) {
    throws(() => recordKind(JSON.parse(line)), why, line);
    throws(() => needsTokenizer(JSON.parse(line)), why, line);
  }
});
