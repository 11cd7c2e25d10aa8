/**
 * The end of the bundled demo: one held-out prompt of the demo data answered greedily by the
 * base model and by base + the adapter just trained, side by side, so a newcomer sees what the
 * adapter changed and not only a loss number. Portable: it takes the store, the prompt's ids, a
 * decoder for the answers' ids and the adapter tensors.
 */
import type { ChatMessage } from "../data/chat.ts";
import { renderChat } from "../data/chat.ts";
import type { TextTokenizer } from "../data/tokenizer.ts";
import { Decoder, type DecoderAdapter } from "./decoder.ts";
import { generate } from "./loop.ts";
import type { Kernels } from "../kernels/abi.ts";
import type { WeightStore } from "../model/weights.ts";
import type { Arena } from "../runtime/arena.ts";
import type { ShowcasePrompt } from "../cli/demo_showcase_run.ts";

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

/** The held-out prompt of `example`, rendered with the chat template and encoded. */
export function showcasePrompt(
  tokenizer: TextTokenizer,
  example: { messages: ChatMessage[] },
): ShowcasePrompt {
  const { messages, reference } = heldOutPrompt(example);
  const text = renderChat(tokenizer, messages, true);
  return {
    prompt: messages.filter((m) => m.role === "user").map((m) => m.content).join("\n"),
    reference,
    ids: tokenizer.encode(text, true),
    stopIds: tokenizer.eosTokenId === null ? [] : [tokenizer.eosTokenId],
  };
}

/**
 * Greedy answers (at most `maxNewTokens`, stopping at a stop id) without and with the adapter.
 * Both are generated before `loadDecoder` is asked for a decoder of their ids, which is released
 * once they are decoded.
 */
export async function showcaseAnswers(o: {
  store: WeightStore;
  kernels: Kernels;
  arena: Arena;
  prompt: ShowcasePrompt;
  loadDecoder: (ids: number[]) => Promise<TextTokenizer>;
  adapter: DecoderAdapter;
  maxNewTokens: number;
}): Promise<ShowcaseAnswers> {
  const ids = o.prompt.ids;
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
        stopIds: o.prompt.stopIds,
      });
      return r.ids;
    } finally {
      decoder.dispose();
      o.arena.release(mark);
    }
  };
  const base = await answer(null);
  const adapted = await answer(o.adapter);
  const tokenizer = await o.loadDecoder([...base, ...adapted]);
  try {
    return {
      prompt: o.prompt.prompt,
      reference: o.prompt.reference,
      base: tokenizer.decode(base, true),
      adapter: tokenizer.decode(adapted, true),
    };
  } finally {
    tokenizer.release?.();
  }
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
