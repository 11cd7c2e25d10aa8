/**
 * slimtune text generation: `deno run -A generate.ts [options]` (`--help` lists every flag).
 *
 * Samples a continuation of `--prompt TEXT` (or an assistant reply to `--chat TEXT`) from a model
 * with 4-bit base weights, with or without a PEFT LoRA adapter (`--adapter DIR`), streaming the
 * text as it is decoded. `--interactive` chats turn by turn instead: one user message per line
 * of stdin (a pipe works), the KV cache reused across turns. With no `--model` it uses the bundled
 * demo model (random weights) and, when `deno run -A train.ts` has written it, the demo adapter in
 * `out/demo-adapter`.
 *
 * Exit status: 0 done, 1 failed, 2 bad command line.
 */
import { main } from "./src/deno/generate_cli.ts";

if (import.meta.main) Deno.exit(await main(Deno.args));
