/**
 * slimtune training CLI: `deno run -A train.ts [options]` (`--help` lists every flag).
 *
 * A thin Deno shell over the portable pieces: it parses flags, opens the model (or builds the
 * demo model), the tokenizer and the data, creates the training session, and hands them to
 * `runTraining` (src/train/trainer.ts), wiring files, signals and the terminal to its callbacks.
 *
 * Exit status: 0 done, 1 failed (bad data, divergence, out of memory, I/O), 2 bad command line
 * (found before anything is loaded), 130/143/129 stopped by SIGINT/SIGTERM/SIGHUP (a checkpoint
 * was saved).
 */
import { main } from "./src/train/cli.ts";

if (import.meta.main) Deno.exit(await main(Deno.args));
