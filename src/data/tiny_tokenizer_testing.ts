/**
 * Test helper: a small byte-level BPE tokenizer (tokenizer.json + tokenizer_config.json) for the
 * tiny random checkpoints, whose 512-row embeddings no real tokenizer fits. Ids 0-2 are special
 * (`<|endoftext|>`, `<|im_start|>`, `<|im_end|>`), 3-258 the 256 byte characters, then merges of
 * lower-case letter pairs (each merge adds one token) up to `size - 3`; the last three ids are
 * left out of the tokenizer, as models pad their embedding beyond the tokenizer. The split regex
 * is Qwen2's.
 */
import { BYTE_TO_CHAR } from "./tokenizer_pipeline.ts";

const QWEN2_SPLIT =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/** The tokenizer files of a vocabulary of `size` ids (at least 262). */
export function tinyTokenizerFiles(
  size: number,
): { tokenizerJson: string; tokenizerConfig: string } {
  const specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"];
  const vocab: Record<string, number> = {};
  for (let b = 0; b < 256; b++) vocab[String.fromCharCode(BYTE_TO_CHAR[b])] = 3 + b;
  const merges: string[] = [];
  const letters = "etaoinshrdlucmfwyp";
  let id = 259;
  const space = String.fromCharCode(BYTE_TO_CHAR[32]);
  const pairs: [string, string][] = [];
  for (const a of letters) pairs.push([space, a]);
  for (const a of letters) for (const b of letters) pairs.push([a, b]);
  for (const [a, b] of pairs) {
    if (id >= size - 3) break;
    vocab[a + b] = id++;
    merges.push(`${a} ${b}`);
  }
  const added = specials.map((content, i) => ({
    id: i,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  }));
  const tokenizer = {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: null,
    pre_tokenizer: {
      type: "Sequence",
      pretokenizers: [
        { type: "Split", pattern: { Regex: QWEN2_SPLIT }, behavior: "Isolated", invert: false },
        { type: "ByteLevel", add_prefix_space: false, trim_offsets: false, use_regex: false },
      ],
    },
    post_processor: {
      type: "ByteLevel",
      add_prefix_space: false,
      trim_offsets: false,
      use_regex: false,
    },
    decoder: { type: "ByteLevel", add_prefix_space: false, trim_offsets: false, use_regex: false },
    model: {
      type: "BPE",
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: "",
      end_of_word_suffix: "",
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab: { ...Object.fromEntries(specials.map((s, i) => [s, i])), ...vocab },
      merges,
    },
  };
  const config = {
    add_bos_token: false,
    bos_token: null,
    eos_token: "<|im_end|>",
    pad_token: "<|endoftext|>",
    chat_template:
      "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}" +
      "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}",
    model_max_length: 1024,
    tokenizer_class: "Qwen2Tokenizer",
  };
  return { tokenizerJson: JSON.stringify(tokenizer), tokenizerConfig: JSON.stringify(config) };
}
