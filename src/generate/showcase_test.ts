import assert from "node:assert/strict";
import type { TextTokenizer } from "../data/tokenizer.ts";
import {
  bundledQwenTokenizerDir,
  loadTokenDecoderDir,
  loadTokenizerDir,
} from "../deno/tokenizer.ts";
import { loadKernelsSync } from "../kernels/wasm.ts";
import { createDemoStore, DEMO_MODEL_CONFIG } from "../model/demo_model.ts";
import { linearShape, type LoraTensors, peftName } from "../model/lora.ts";
import { demoShowcase } from "../deno/demo_showcase.ts";
import { heldOutPrompt, showcaseText } from "./showcase.ts";

Deno.test("showcase: the held-out prompt is the chat up to its first assistant turn", () => {
  const user = { role: "user", content: "hi" };
  assert.deepEqual(
    heldOutPrompt({ messages: [user, { role: "assistant", content: "hello" }, user] }),
    { messages: [user], reference: "hello" },
  );
  assert.deepEqual(heldOutPrompt({ messages: [user] }), { messages: [user], reference: null });
});

Deno.test("showcase: the text quotes each answer, cut at 160 characters", () => {
  const long = "x".repeat(200);
  const text = showcaseText({ prompt: "p", reference: null, base: long, adapter: "a" });
  assert.doesNotMatch(text, /reference/);
  assert.match(text, new RegExp(`base {12}"${"x".repeat(157)}\\.\\.\\."\n`));
  assert.match(text, /base \+ adapter {2}"a"$/);
});

Deno.test("showcase: an adapter whose B is zero answers as the base does; the decode-only decoder decodes as the whole tokenizer", async () => {
  const { kernels, arena } = loadKernelsSync();
  const store = createDemoStore(kernels, arena, "int4");
  const dir = bundledQwenTokenizerDir();
  const tmp = await Deno.makeTempDir({ prefix: "slimtune-showcase-" });
  try {
    const tokenizer = await loadTokenizerDir(dir, { cacheDir: tmp });
    const [out, inF] = linearShape(DEMO_MODEL_CONFIG, "q");
    const tensors: LoraTensors = new Map();
    for (let i = 0; i < DEMO_MODEL_CONFIG.numLayers; i++) {
      const a = Float32Array.from({ length: 2 * inF }, (_, j) => Math.sin(j + i));
      tensors.set(peftName(i, "q", "A"), { shape: [2, inF], data: a });
      tensors.set(peftName(i, "q", "B"), { shape: [out, 2], data: new Float32Array(out * 2) });
    }
    const evalPath = new URL("../../examples/data/demo_chat_eval.jsonl", import.meta.url).pathname;
    const prompt = await demoShowcase.prompt(tokenizer, evalPath);
    assert.equal(prompt.stopIds[0], tokenizer.eosTokenId);
    const decoded: number[][] = [];
    const answers = (loadDecoder: (ids: number[]) => Promise<TextTokenizer>) =>
      demoShowcase.answers({
        store,
        kernels,
        arena,
        prompt,
        loadDecoder: (ids) => (decoded.push(ids), loadDecoder(ids)),
        adapter: { r: 2, alpha: 4, targets: ["q"], baseModel: "demo" },
        loraTensors: () => tensors,
      });
    const text = await answers((ids) => loadTokenDecoderDir(dir, ids, { cacheDir: tmp }));
    const line = (label: string) => new RegExp(`^  ${label} +(.*)$`, "m").exec(text)?.[1];
    assert.equal(line("prompt"), JSON.stringify("What is the capital of France?"));
    assert.equal(line("reference"), JSON.stringify("The capital of France is Paris."));
    assert.ok(line("base")!.length > 2, text);
    assert.equal(line("base \\+ adapter"), line("base"));
    // The decoder was asked for both answers' ids; the whole tokenizer prints the same text.
    assert.ok(decoded[0].length > 2, `${decoded[0]}`);
    assert.equal(await answers(() => loadTokenizerDir(dir, { cacheDir: tmp })), text);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});
