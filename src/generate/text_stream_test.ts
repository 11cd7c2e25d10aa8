import { ok, strictEqual } from "node:assert/strict";
import { bundledQwenTokenizerDir, loadTokenizerDir } from "../deno/tokenizer.ts";
import { TextStreamer } from "./text_stream.ts";

Deno.test("streamed text equals the decoded whole, also when tokens split UTF-8 characters", async () => {
  const tok = await loadTokenizerDir(bundledQwenTokenizerDir());
  const text = "Hello naïve café ☕🦕 world\n第二行：你好！\nend";
  const ids = tok.encode(text);
  // The emoji / CJK need byte-fallback tokens that decode to U+FFFD on their own.
  ok(ids.some((id) => tok.decode([id]).includes("\uFFFD")), "fixture must split a character");
  const s = new TextStreamer(tok);
  const pieces = ids.map((id) => s.push(id));
  const streamed = pieces.join("") + s.flush();
  strictEqual(streamed, text);
  ok(pieces.every((p) => !p.includes("\uFFFD")), JSON.stringify(pieces));
});

Deno.test("special tokens are skipped by default and kept on request", async () => {
  const tok = await loadTokenizerDir(bundledQwenTokenizerDir());
  const ids = [...tok.encode("hi"), tok.eosTokenId!];
  const skip = new TextStreamer(tok);
  strictEqual(ids.map((id) => skip.push(id)).join("") + skip.flush(), "hi");
  const keep = new TextStreamer(tok, false);
  strictEqual(ids.map((id) => keep.push(id)).join("") + keep.flush(), "hi<|im_end|>");
});

Deno.test("flush with nothing held back is empty (text ending in a line break)", async () => {
  const tok = await loadTokenizerDir(bundledQwenTokenizerDir());
  const s = new TextStreamer(tok);
  strictEqual(tok.encode("a\n").map((id) => s.push(id)).join(""), "a\n");
  strictEqual(s.flush(), "");
  strictEqual(s.flush(), "");
});

Deno.test("a long line without line breaks streams exactly, decoding a bounded window per token", async () => {
  const tok = await loadTokenizerDir(bundledQwenTokenizerDir());
  const words = ["naïve", "café", "☕", "🦕", "第二行", "world,", "(x)", "  spaced", "end."];
  let text = "";
  for (let i = 0; i < 900; i++) text += (i ? " " : "") + words[(i * 7) % words.length];
  const ids = tok.encode(text);
  ok(ids.length > 1000);
  let decoded = 0; // ids passed to decode, summed over calls
  const counting = {
    decode: (x: ArrayLike<number>, skip?: boolean) => {
      decoded += x.length;
      return tok.decode(x, skip);
    },
  };
  const s = new TextStreamer(counting);
  const streamed = ids.map((id) => s.push(id)).join("") + s.flush();
  strictEqual(streamed, text);
  // O(n): at most ~ (window + context) ids per push, not the whole line so far (~n²/2).
  ok(decoded < 100 * ids.length, `${decoded} ids decoded for ${ids.length} tokens`);
});
