/**
 * The demo run's showcase (see `showcase.ts`): the first prompt of the demo's held-out data file,
 * answered by the base and by base + the adapter just trained, as the text the demo prints.
 * `train.ts` hands it to the train CLI, which calls it after a demo run.
 */
import type { DemoShowcase } from "../cli/demo_showcase_run.ts";
import type { ChatMessage } from "../data/chat.ts";
import { heldOutPrompt, showcaseAnswers, showcaseText } from "./showcase.ts";

/** Tokens each answer may take. */
export const SHOWCASE_TOKENS = 24;

/** Greedy answers to the first held-out demo prompt, by the base and by base + adapter. */
export const demoShowcase: DemoShowcase = async (run) => {
  const first = (await Deno.readTextFile(run.evalDataPath)).split("\n")[0];
  const { messages, reference } = heldOutPrompt(JSON.parse(first) as { messages: ChatMessage[] });
  const tokenizer = await run.loadTokenizer();
  if (!tokenizer) throw new Error("the demo's tokenizer is missing");
  return showcaseText(
    await showcaseAnswers({
      store: run.store,
      kernels: run.kernels,
      arena: run.arena,
      tokenizer,
      adapter: {
        r: run.adapter.r,
        alpha: run.adapter.alpha,
        targets: run.adapter.targets,
        tensors: run.loraTensors(),
      },
      messages,
      reference,
      maxNewTokens: SHOWCASE_TOKENS,
    }),
  );
};
