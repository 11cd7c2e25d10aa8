/**
 * The end of the bundled demo: one held-out prompt of the demo data answered greedily by the
 * base model and by base + the adapter just trained, side by side, so a newcomer sees what the
 * adapter changed and not only a loss number. Portable: it takes the store, the tokenizer and
 * the adapter tensors.
 */
import type { ChatMessage } from "../data/chat.ts";
import { renderChat } from "../data/chat.ts";
import type { TextTokenizer } from "../data/tokenizer.ts";
import { Decoder, type DecoderAdapter } from "./decoder.ts";
import { generate } from "./loop.ts";
import type { Kernels } from "../kernels/abi.ts";
import type { WeightStore } from "../model/weights.ts";
import type { Arena } from "../runtime/arena.ts";

/** Greedy answers of the base and of base + adapter to one chat prompt. */
export interface ShowcaseAnswers {
  prompt: string;
  reference: string | null;
  base: string;
  adapter: string;
}

/** The first user turn of a chat example and the assistant answer that follows it. */
export function heldOutPrompt(
  example: { messages: ChatMessage[] },
): { messages: ChatMessage[]; reference: string | null } {
  const i = example.messages.findIndex((m) => m.role === "assistant");
  const messages = i < 0 ? example.messages : example.messages.slice(0, i);
  return { messages, reference: i < 0 ? null : example.messages[i].content };
}

/** Greedy answers (at most `maxNewTokens`, stopping at EOS) without and with the adapter. */
export async function showcaseAnswers(o: {
  store: WeightStore;
  kernels: Kernels;
  arena: Arena;
  tokenizer: TextTokenizer;
  adapter: DecoderAdapter;
  messages: ChatMessage[];
  reference: string | null;
  maxNewTokens: number;
}): Promise<ShowcaseAnswers> {
  const text = renderChat(o.tokenizer, o.messages, true);
  const ids = o.tokenizer.encode(text, true);
  const stopIds = o.tokenizer.eosTokenId === null ? [] : [o.tokenizer.eosTokenId];
  const answer = async (adapter: DecoderAdapter | null) => {
    const mark = o.arena.mark();
    const decoder = Decoder.create({
      store: o.store,
      kernels: o.kernels,
      arena: o.arena,
      maxLen: ids.length + o.maxNewTokens,
      adapter,
    });
    try {
      const r = await generate(decoder, ids, {
        maxNewTokens: o.maxNewTokens,
        temperature: 0,
        topP: 1,
        seed: 0,
        stopIds,
      });
      return o.tokenizer.decode(r.ids, true);
    } finally {
      decoder.dispose();
      o.arena.release(mark);
    }
  };
  const prompt = o.messages.filter((m) => m.role === "user").map((m) => m.content).join("\n");
  return {
    prompt,
    reference: o.reference,
    base: await answer(null),
    adapter: await answer(o.adapter),
  };
}

/** The answers as the demo prints them. */
export function showcaseText(a: ShowcaseAnswers): string {
  const line = (s: string) => JSON.stringify(s.length > 160 ? s.slice(0, 157) + "..." : s);
  return [
    "held-out prompt (not trained on), greedy answers:",
    `  prompt          ${line(a.prompt)}`,
    ...(a.reference === null ? [] : [`  reference       ${line(a.reference)}`]),
    `  base            ${line(a.base)}`,
    `  base + adapter  ${line(a.adapter)}`,
  ].join("\n");
}
