import assert from "node:assert/strict";
import { UsageError } from "../cli/usage.ts";
import { presetModelConfig } from "../io/presets.ts";
import { planMemory } from "../methods/memory_plan.ts";
import { DEFAULT_HEAD_CHUNK_ROWS } from "../model/head_tables.ts";
import { parseTrainArgs } from "./args.ts";
import {
  checkFlagCombinations,
  checkFlagsAgainstModel,
  headChunkRowsFor,
  lcsbSettingsFor,
  runMemoryPlan,
  runMemoryPlanOptions,
  WASM_MEMORY_LIMIT_BYTES,
} from "./preflight.ts";

/** A UsageError naming `flag`, with `reason` in its words. */
const usage = (flag: string, reason: RegExp) => (e: unknown) =>
  e instanceof UsageError && e.flag === flag && reason.test(e.reason);

const parsed = (...argv: string[]) => parseTrainArgs(["--data", "d.jsonl", ...argv]);
const combination = (...argv: string[]) => {
  const { args, given } = parsed(...argv);
  checkFlagCombinations(args, given);
};

Deno.test("preflight: flags that would be ignored, or cannot work together, are refused", () => {
  assert.throws(() => combination("--eval-every", "5"), usage("--eval-every", /--eval-data/));
  assert.throws(
    () => combination("--method", "mesp", "--lcsb-groups", "2"),
    usage("--lcsb-groups", /only used by --method lcsb \(this run is mesp\)/),
  );
  assert.throws(
    () => combination("--method", "full", "--keep-tapes", "2"),
    usage("--keep-tapes", /mebp or mesp/),
  );
  assert.throws(
    () => combination("--method", "mezo", "--checkpoints", "disk"),
    usage("--checkpoints", /mezo, which has no backward/),
  );
  assert.throws(
    () => combination("--clip-stash", "f32", "--max-grad-norm", "0"),
    usage("--clip-stash", /needs --max-grad-norm > 0/),
  );
  assert.throws(
    () => combination("--method", "mezo", "--clip-stash", "f32"),
    usage("--clip-stash", /mezo has no gradients to clip/),
  );
  // The same flags, each with what it needs.
  combination("--eval-every", "5", "--eval-data", "e.jsonl");
  combination("--method", "lcsb", "--lcsb-groups", "2", "--checkpoints", "disk");
  combination("--method", "mebp", "--keep-tapes", "2");
  combination("--clip-stash", "f32", "--max-grad-norm", "1");
});

Deno.test("preflight: flags against the model, and the plan against wasm's and the machine's memory", () => {
  const config = presetModelConfig("qwen2.5-0.5b");
  const against = (system: number | null, ...argv: string[]) => {
    const { args, given } = parsed(...argv);
    checkFlagsAgainstModel(args, given, config, "Qwen2.5-0.5B", system);
  };
  assert.throws(
    () => against(null, "--seq-len", "40000"),
    usage(
      "--seq-len",
      /40000 is above the model's max_position_embeddings 32768 \(Qwen2\.5-0\.5B\)/,
    ),
  );
  assert.throws(
    () => against(null, "--method", "lcsb", "--lcsb-groups", "25"),
    usage("--lcsb-groups", /25 is more than the model's 24 layers/),
  );
  assert.throws(
    () => against(null, "--method", "mebp", "--keep-tapes", "30"),
    usage("--keep-tapes", /30 is more than the model's 24 layers/),
  );
  const { args } = parsed("--seq-len", "256");
  const lora = { rank: args.rank, alpha: args.alpha, targets: args.targets };
  const planned = runMemoryPlan(args, config, 256, lora).total;
  against(planned, "--seq-len", "256"); // exactly fits
  assert.throws(
    () => against(planned - 1, "--seq-len", "256"),
    usage("--seq-len", /plan a working set of .* more than this machine's .* of memory/),
  );
  assert.throws(
    () => against(null, "--batch-size", "64", "--seq-len", "4096"),
    usage("--batch-size", /more than the 4096\.0 MB a wasm memory can hold; lower --batch-size/),
  );
  assert.equal(WASM_MEMORY_LIMIT_BYTES, 4 * 1024 ** 3);
});

Deno.test("preflight: the memory plan's options are the run's flags, as the session reads them", () => {
  const config = presetModelConfig("tiny-qwen2");
  const { args } = parsed("--method", "lcsb", "--lcsb-groups", "8", "--checkpoints", "disk");
  const lora = { rank: 4, alpha: 8, targets: args.targets };
  const options = runMemoryPlanOptions(args, config, 64, lora, 2);
  assert.deepEqual(options.lcsb, { groups: config.numLayers, pattern: args.lcsbPattern });
  assert.equal(options.checkpoints, "spill");
  assert.equal(options.keptTapes, 0, "lcsb keeps no tapes");
  assert.equal(options.seqLen, 64);
  assert.equal(options.lora, lora);
  assert.deepEqual(runMemoryPlan(args, config, 64, lora, 2), planMemory(options));
  const mebp = parsed("--method", "mebp").args;
  assert.equal(runMemoryPlanOptions(mebp, config, 64, lora, 2).keptTapes, 2);
  assert.equal(runMemoryPlanOptions(mebp, config, 64, lora, 2).checkpoints, "memory");
  assert.deepEqual(lcsbSettingsFor({ lcsbGroups: 1, lcsbPattern: "strided" }, config), {
    groups: 1,
    pattern: "strided",
  });
});

Deno.test("preflight: head chunk rows: the default for 0, else rounded up to 16", () => {
  assert.equal(headChunkRowsFor({ headChunkRows: 0 }), DEFAULT_HEAD_CHUNK_ROWS);
  assert.equal(headChunkRowsFor({ headChunkRows: 100 }), 112);
  assert.equal(headChunkRowsFor({ headChunkRows: 64 }), 64);
});
