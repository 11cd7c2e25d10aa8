import { deepStrictEqual, strictEqual, throws } from "node:assert/strict";
import {
  BYTE_TO_CHAR,
  CHAR_TO_BYTE,
  decoderOf,
  normalizerOf,
  postTemplateOf,
  preTokenizerOf,
  UnsupportedTokenizerError,
} from "./tokenizer_pipeline.ts";

Deno.test("byte alphabet: 256 distinct printable stand-ins, inverted exactly", () => {
  strictEqual(new Set(BYTE_TO_CHAR).size, 256);
  strictEqual(String.fromCharCode(BYTE_TO_CHAR[0x20]), "Ġ");
  for (let b = 0; b < 256; b++) strictEqual(CHAR_TO_BYTE[BYTE_TO_CHAR[b]], b);
});

Deno.test("pre-tokenizers: Split isolates matches, ByteLevel with its regex, Digits", () => {
  const split = preTokenizerOf({
    type: "Sequence",
    pretokenizers: [
      { type: "Split", pattern: { Regex: "\\p{N}" }, behavior: "Isolated", invert: false },
      { type: "ByteLevel", add_prefix_space: false, use_regex: false },
    ],
  });
  deepStrictEqual(split.split("ab12 c"), ["ab", "1", "2", " c"]);
  strictEqual(split.byteLevel, true);
  const gpt2 = preTokenizerOf({ type: "ByteLevel", add_prefix_space: true });
  deepStrictEqual(gpt2.split("Hello world!"), [" Hello", " world", "!"]);
  deepStrictEqual(preTokenizerOf({ type: "Digits", individual_digits: false }).split("a123b"), [
    "a",
    "123",
    "b",
  ]);
  throws(
    () =>
      preTokenizerOf({
        type: "Sequence",
        pretokenizers: [{ type: "ByteLevel" }, { type: "Digits" }],
      }),
    UnsupportedTokenizerError,
  );
  throws(() => preTokenizerOf({ type: "Metaspace" }), /pre_tokenizer of type "Metaspace"/);
});

Deno.test("normalizers, templates and decoders of the supported families", () => {
  strictEqual(
    normalizerOf({ type: "Replace", pattern: { String: " " }, content: "▁" })!("a b"),
    "a▁b",
  );
  strictEqual(normalizerOf(null), null);
  deepStrictEqual(
    postTemplateOf({
      type: "TemplateProcessing",
      single: [{ SpecialToken: { id: "<bos>", type_id: 0 } }, {
        Sequence: { id: "A", type_id: 0 },
      }],
    }),
    ["<bos>", null],
  );
  const gemma = decoderOf({
    type: "Sequence",
    decoders: [
      { type: "Replace", pattern: { String: "▁" }, content: " " },
      { type: "ByteFallback" },
      { type: "Fuse" },
    ],
  }, () => false);
  strictEqual(gemma(["▁Hi", "<0xF0>", "<0x9F>", "<0x98>", "<0x80>", "!"]), " Hi😀!");
  const byteLevel = decoderOf({ type: "ByteLevel" }, (t) => t === "<|x|>");
  strictEqual(byteLevel(["Hi", "Ġthere", "<|x|>", "Ã©"]), "Hi there<|x|>é");
});
