import { deepStrictEqual, ok, strictEqual, throws } from "node:assert/strict";
import { UsageError } from "../cli/usage.ts";
import { defaultTrainArgs, FLAGS, helpText, parseTrainArgs } from "./args.ts";

Deno.test("defaults match the documented contract", () => {
  const a = defaultTrainArgs();
  strictEqual(a.method, "mesp");
  strictEqual(a.quant, "int4");
  strictEqual(a.weights, "auto");
  strictEqual(a.checkpoints, "auto");
  strictEqual(a.rank, 8);
  strictEqual(a.alpha, 16);
  deepStrictEqual(a.targets, ["q", "k", "v", "o", "gate", "up", "down"]);
  strictEqual(a.optimizer, "adamw8bit");
  strictEqual(a.lr, 1e-4);
  strictEqual(a.seqLen, 256);
  strictEqual(a.batchSize, 1);
  strictEqual(a.gradAccum, 1);
  strictEqual(a.seed, 0);
  strictEqual(a.model, null);
});

Deno.test("every flag of the contract parses, and given flags are recorded", () => {
  const { args, given, help } = parseTrainArgs([
    "--model",
    "m",
    "--data",
    "d.jsonl",
    "--eval-data",
    "e.jsonl",
    "--eval-every",
    "5",
    "--method",
    "lcsb",
    "--quant",
    "none",
    "--weights",
    "streamed",
    "--rank",
    "4",
    "--alpha",
    "8",
    "--targets",
    "q,v_proj",
    "--adapter-init",
    "a",
    "--optimizer",
    "sgd",
    "--lr",
    "3e-4",
    "--weight-decay",
    "0.01",
    "--max-grad-norm",
    "0",
    "--lr-schedule",
    "cosine",
    "--warmup-steps",
    "2",
    "--steps",
    "10",
    "--batch-size",
    "2",
    "--grad-accum",
    "3",
    "--seq-len",
    "64",
    "--seed",
    "7",
    "--threads",
    "2",
    "--lcsb-groups",
    "2",
    "--lcsb-pattern",
    "strided",
    "--mezo-eps",
    "0.001",
    "--out",
    "o",
    "--save-every",
    "3",
    "--resume",
    "r",
    "--metrics",
    "m.jsonl",
    "--max-memory",
    "500",
    "--checkpoints",
    "disk",
  ]);
  strictEqual(help, false);
  deepStrictEqual(args.targets, ["q", "v"]);
  strictEqual(args.method, "lcsb");
  strictEqual(args.lr, 3e-4);
  strictEqual(args.maxGradNorm, 0);
  strictEqual(args.lcsbPattern, "strided");
  strictEqual(args.maxMemory, 500);
  strictEqual(args.resume, "r");
  strictEqual(args.checkpoints, "disk");
  strictEqual(given.size, 32);
  ok(!given.has("packing"));
  strictEqual(parseTrainArgs(["--lr=0.5"]).args.lr, 0.5);
  strictEqual(parseTrainArgs(["-h"]).help, true);
});

Deno.test("bad flags and values are usage errors naming the flag", () => {
  const cases: [string[], RegExp][] = [
    [["--bogus"], /^--bogus: unknown option/],
    [["--rank", "0"], /^--rank: must be at least 1, got 0/],
    [["--rank", "2.5"], /^--rank: expected an integer, got "2.5"/],
    [["--lr", "fast"], /^--lr: expected a number, got "fast"/],
    [["--lr=-1"], /^--lr: must be at least 0/],
    [["--lr", "-1"], /^--lr: a value starting with "-" must be written --lr=VALUE/],
    [["--alpha", "0"], /^--alpha: must be greater than 0/],
    [["--method", "lora"], /^--method: must be one of full\|mebp\|mesp\|lcsb\|mezo, got "lora"/],
    [["--targets", "q,lm_head"], /^--targets: unknown target "lm_head"/],
    [["--steps"], /^--steps: needs a value/],
    [["stray"], /^stray: unexpected argument/],
    [["--seed=-3"], /^--seed: must be at least 0/],
    [["--checkpoints", "file"], /^--checkpoints: must be one of auto\|memory\|disk, got "file"/],
  ];
  for (const [argv, want] of cases) {
    throws(() => parseTrainArgs(argv), (e) => e instanceof UsageError && want.test(e.message));
  }
});

Deno.test("--help lists every flag with its default", () => {
  const h = helpText();
  for (const f of FLAGS) ok(h.includes(`--${f.flag}`), f.flag);
  ok(h.includes("--method full|mebp|mesp|lcsb|mezo"));
  ok(/--rank R\s+LoRA rank \(default 8\)/.test(h));
  ok(/--lr X\s+.*\(default 0\.0001\)/.test(h));
});
