/**
 * The demo run's showcase (see `showcase.ts`): the first prompt of the demo's held-out data file,
 * answered by the base and by base + the adapter just trained, as the text the demo prints.
 * `train.ts` hands it to the train CLI, which encodes the prompt while the data's tokenizer is
 * loaded and asks for the answers after a demo run.
 */
import type { DemoShowcase } from "../cli/demo_showcase_run.ts";
import type { ChatMessage } from "../data/chat.ts";
import { showcaseAnswers, showcasePrompt, showcaseText } from "../generate/showcase.ts";

/** Tokens each answer may take. */
export const SHOWCASE_TOKENS = 24;

/** Greedy answers to the first held-out demo prompt, by the base and by base + adapter. */
export const demoShowcase: DemoShowcase = {
  async prompt(tokenizer, evalDataPath) {
    const first = (await Deno.readTextFile(evalDataPath)).split("\n")[0];
    return showcasePrompt(tokenizer, JSON.parse(first) as { messages: ChatMessage[] });
  },
  async answers(run) {
    return showcaseText(
      await showcaseAnswers({
        store: run.store,
        kernels: run.kernels,
        arena: run.arena,
        prompt: run.prompt,
        loadDecoder: run.loadDecoder,
        adapter: {
          r: run.adapter.r,
          alpha: run.adapter.alpha,
          targets: run.adapter.targets,
          tensors: run.loraTensors(),
        },
        maxNewTokens: SHOWCASE_TOKENS,
      }),
    );
  },
};
