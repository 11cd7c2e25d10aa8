/**
 * slimtune training CLI: `deno run -A train.ts [options]` (`--help` lists every flag).
 *
 * A thin Deno shell over the portable pieces: it parses flags, opens the model (or builds the
 * demo model), the tokenizer and the data, creates the training session, and hands them to
 * `runTraining` (src/train/trainer.ts), wiring files, signals and the terminal to its callbacks.
 * After the bundled demo it shows what the adapter changed, through the generation code.
 *
 * Exit status: 0 done, 1 failed (bad data, divergence, out of memory, I/O), 2 bad command line
 * (found before anything is loaded), 130/143/129 stopped by SIGINT/SIGTERM/SIGHUP (a checkpoint
 * was saved).
 */
import { demoShowcase } from "./src/deno/demo_showcase.ts";
import { defaultIo, main } from "./src/deno/train_cli.ts";

if (import.meta.main) Deno.exit(await main(Deno.args, { ...defaultIo, demoShowcase }));
