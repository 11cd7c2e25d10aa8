import assert from "node:assert/strict";
import { parseTrainArgs } from "./args.ts";
import { padIdWithoutTokenizer, runDataSpecFor } from "./run_data_spec.ts";

Deno.test("without a tokenizer the padding id is config.json's pad_token_id, else its EOS (first of a list), when in the vocabulary, else 0", () => {
  assert.equal(padIdWithoutTokenizer({ eosTokenId: 2, vocabSize: 512 }), 2);
  assert.equal(padIdWithoutTokenizer({ eosTokenId: [7, 3], vocabSize: 512 }), 7);
  assert.equal(padIdWithoutTokenizer({ eosTokenId: null, vocabSize: 512 }), 0);
  // An id the embedding does not have would fail the lookup: never used.
  assert.equal(padIdWithoutTokenizer({ eosTokenId: 151643, vocabSize: 512 }), 0);
  assert.equal(padIdWithoutTokenizer({ eosTokenId: [], vocabSize: 512 }), 0);
  // config.json's pad_token_id comes first when it is a valid id.
  assert.equal(padIdWithoutTokenizer({ eosTokenId: 2, vocabSize: 512, padTokenId: 9 }), 9);
  assert.equal(padIdWithoutTokenizer({ eosTokenId: 2, vocabSize: 512, padTokenId: 600 }), 2);
  assert.equal(padIdWithoutTokenizer({ eosTokenId: 2, vocabSize: 512, padTokenId: null }), 2);
});

Deno.test("runDataSpecFor: the data flags, the tokenizer on demand and the padding id", async () => {
  const { args } = parseTrainArgs([
    ...["--model", "m", "--data", "d.jsonl", "--eval-data", "e.jsonl", "--batch-size", "3"],
    ...["--seq-len", "48", "--packing", "none", "--max-line-bytes", "4096", "--steps", "11"],
    ...["--seed", "5"],
  ]);
  let loads = 0;
  const spec = runDataSpecFor(args, { eosTokenId: 2, vocabSize: 512 }, () => {
    loads++;
    return Promise.resolve(null);
  }, "; hint");
  assert.equal(loads, 0, "the tokenizer is loaded only when the data needs it");
  assert.deepEqual(
    [spec.train, spec.eval, spec.batchSize, spec.seqLen, spec.packing, spec.maxLineBytes],
    ["d.jsonl", "e.jsonl", 3, 48, "none", 4096],
  );
  assert.deepEqual([spec.steps, spec.session, spec.padId, spec.tokenizerHint], [
    11,
    { seed: 5 },
    2,
    "; hint",
  ]);
  await spec.tokenizer!();
  assert.equal(loads, 1);
});
