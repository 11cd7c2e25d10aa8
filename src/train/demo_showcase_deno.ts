/** The demo's showcase (see `demo_showcase.ts`) fed from the bundled held-out data file. */
import type { ChatMessage } from "../data/chat.ts";
import type { TextTokenizer } from "../data/tokenizer.ts";
import type { Kernels } from "../kernels/abi.ts";
import type { TrainingSession } from "../methods/session.ts";
import type { WeightStore } from "../model/weights.ts";
import type { Arena } from "../runtime/arena.ts";
import { demoEvalDataPath } from "./demo.ts";
import { heldOutPrompt, type ShowcaseAnswers, showcaseAnswers } from "./demo_showcase.ts";
import type { AdapterInfo } from "../io/peft_adapter.ts";

/** Tokens each answer may take. */
export const SHOWCASE_TOKENS = 24;

/** Greedy answers to the first held-out demo prompt, by the base and by base + adapter. */
export async function demoShowcase(
  store: WeightStore,
  kernels: Kernels,
  arena: Arena,
  loadTokenizer: () => Promise<TextTokenizer | null>,
  adapter: AdapterInfo,
  session: TrainingSession,
): Promise<ShowcaseAnswers> {
  const first = (await Deno.readTextFile(demoEvalDataPath())).split("\n")[0];
  const { messages, reference } = heldOutPrompt(JSON.parse(first) as { messages: ChatMessage[] });
  const tokenizer = await loadTokenizer();
  if (!tokenizer) throw new Error("the demo's tokenizer is missing");
  return await showcaseAnswers({
    store,
    kernels,
    arena,
    tokenizer,
    adapter: {
      r: adapter.r,
      alpha: adapter.alpha,
      targets: adapter.targets,
      tensors: session.loraTensors(),
    },
    messages,
    reference,
    maxNewTokens: SHOWCASE_TOKENS,
  });
}
