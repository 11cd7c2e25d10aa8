import { deepStrictEqual, ok, rejects, strictEqual } from "node:assert/strict";
import { renderChat } from "../data/chat.ts";
import { bundledQwenTokenizerDir, loadTokenizerDir } from "../deno/tokenizer.ts";
import { loadKernelsSync } from "../kernels/wasm.ts";
import { createDemoStore } from "../model/demo_model.ts";
import { ChatContextError, ChatSession, readLines } from "./chat.ts";
import { Decoder } from "./decoder.ts";
import { generate } from "./loop.ts";

function streamOf(chunks: Uint8Array[]): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(c) {
      for (const x of chunks) c.enqueue(x);
      c.close();
    },
  });
}

Deno.test("readLines: lines across chunks and split UTF-8 characters, CRLF, a last bare line", async () => {
  const bytes = new TextEncoder().encode("héllo wörld\r\n☕ two\n\nlast");
  // Cut every 3 bytes: through the middle of é, ö and ☕ and between \r and \n.
  const chunks: Uint8Array[] = [];
  for (let i = 0; i < bytes.length; i += 3) chunks.push(bytes.subarray(i, i + 3));
  const lines: string[] = [];
  for await (const l of readLines(streamOf(chunks))) lines.push(l);
  deepStrictEqual(lines, ["héllo wörld", "☕ two", "", "last"]);
  const none: string[] = [];
  for await (const l of readLines(streamOf([]))) none.push(l);
  deepStrictEqual(none, []);
});

const tok = await loadTokenizerDir(bundledQwenTokenizerDir());
const EOS = [151645];

Deno.test("chat: the second turn reuses the cached conversation and answers as a fresh prefill would", async () => {
  const { kernels, arena } = loadKernelsSync();
  const store = createDemoStore(kernels, arena, "int4");
  const opts = { maxNewTokens: 6, temperature: 0, topP: 1, seed: 0, stopIds: EOS };
  const decoder = Decoder.create({ store, kernels, arena, maxLen: 256 });
  const chat = new ChatSession(decoder, tok, { ...opts, system: "Be brief." });
  const a = await chat.turn("Hello there");
  strictEqual(a.reusedTokens, 0);
  strictEqual(a.prefilledTokens, a.promptTokens);
  ok(a.ids.length > 0 && a.reply.length > 0);
  const b = await chat.turn("Tell me more");
  // The second prompt is the first exchange plus the new turn; what the cache held of it (the
  // first prompt and the fed reply tokens, as far as the re-encoded reply text matches them) is
  // not run again.
  const second = tok.encode(renderChat(tok, chat.messages.slice(0, 4), true), false);
  strictEqual(b.promptTokens, second.length);
  ok(renderChat(tok, chat.messages.slice(0, 4), true).includes(a.reply));
  ok(b.reusedTokens >= a.promptTokens, `reused ${b.reusedTokens} of ${a.promptTokens}`);
  strictEqual(b.prefilledTokens, b.promptTokens - b.reusedTokens);
  ok(b.prefilledTokens < b.promptTokens / 2, `prefilled ${b.prefilledTokens}`);
  deepStrictEqual(chat.messages.map((m) => m.role), [
    "system",
    "user",
    "assistant",
    "user",
    "assistant",
  ]);
  strictEqual(chat.messages[2].content, a.reply);
  // A fresh decoder on the same rendered conversation answers the same (greedy).
  const fresh = Decoder.create({ store, kernels, arena, maxLen: 256 });
  const want = await generate(fresh, second, opts);
  fresh.dispose();
  deepStrictEqual(b.ids, want.ids);
  decoder.dispose();
});

Deno.test("chat: the oldest exchange is dropped to fit the cache; a turn too long alone is refused", async () => {
  const { kernels, arena } = loadKernelsSync();
  const store = createDemoStore(kernels, arena, "int4");
  const opts = { maxNewTokens: 4, temperature: 0.7, topP: 0.9, seed: 3, stopIds: EOS };
  // Room for the long message alone (and its reply), not for it after the first exchange.
  const long = "two ".repeat(30);
  const alone = tok.encode(renderChat(tok, [{ role: "user", content: long }], true)).length;
  const maxLen = alone + opts.maxNewTokens - 1 + 5;
  const decoder = Decoder.create({ store, kernels, arena, maxLen });
  const chat = new ChatSession(decoder, tok, opts);
  const a = await chat.turn("one");
  strictEqual(a.droppedExchanges, 0);
  const b = await chat.turn(long);
  strictEqual(b.droppedExchanges, 1);
  strictEqual(b.promptTokens, alone);
  deepStrictEqual(chat.messages.map((m) => m.content), [long, b.reply]);
  await rejects(chat.turn("three ".repeat(100)), ChatContextError);
  deepStrictEqual(chat.messages.map((m) => m.content), [long, b.reply], "unchanged");
  // The session goes on after a refused turn.
  const c = await chat.turn("four");
  strictEqual(c.droppedExchanges, 1);
  decoder.dispose();
});
