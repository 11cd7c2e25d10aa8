/**
 * Command-line flags of `train.ts`: one table of every flag (name, default, validation, help), a
 * strict parser (`runtime/flags.ts`), and the `--help` text generated from the same table, so the
 * help can never disagree with what is parsed.
 *
 * @example
 * ```ts
 * import { parseTrainArgs } from "./args.ts";
 * const { args } = parseTrainArgs(["--rank", "16", "--targets", "q,v"]);
 * console.log(args.rank, args.targets); // 16 ["q", "v"]
 * ```
 */
import { DEFAULT_MAX_LINE_BYTES } from "../data/jsonl.ts";
import {
  parseIntFlag,
  parseNumberFlag,
  UsageError,
  usageErrorFromParseArgs,
} from "../cli/usage.ts";
import { parseFlags } from "../runtime/flags.ts";
import { LINEAR_NAMES, type LinearName } from "../model/weights.ts";
import type { OptimizerKind } from "../optim/optimizer.ts";
import type { ClipStash } from "../methods/memory_plan.ts";
import {
  DEFAULT_METHOD,
  LCSB_PATTERNS,
  type LcsbSettings,
  METHOD_DEFAULTS,
  METHOD_NAMES,
  type MethodName,
} from "../methods/registry.ts";

/** Everything `train.ts` can be told. */
export interface TrainArgs {
  model: string | null;
  data: string | null;
  evalData: string | null;
  evalEvery: number;
  /** With evalData: also evaluate the base (adapter off) and print both and the difference. */
  compareBase: boolean;
  method: MethodName;
  quant: "int4" | "none";
  /** "auto" until the run resolves it (see `src/deno/weights_choice.ts`). */
  weights: "auto" | "resident" | "streamed";
  cacheDir: string | null;
  rank: number;
  alpha: number;
  targets: LinearName[];
  adapterInit: string | null;
  optimizer: OptimizerKind;
  lr: number;
  weightDecay: number;
  maxGradNorm: number;
  clipStash: ClipStash;
  lrSchedule: "constant" | "linear" | "cosine";
  warmupSteps: number;
  steps: number;
  batchSize: number;
  gradAccum: number;
  seqLen: number;
  packing: "greedy" | "none";
  maxLineBytes: number;
  seed: number;
  threads: number;
  lcsbGroups: number;
  lcsbPattern: LcsbSettings["pattern"];
  mezoEps: number;
  headChunkRows: number;
  /** mebp, mesp: top blocks whose tapes are kept, or "auto" (what fits in `maxMemory`). */
  keepTapes: number | "auto";
  /** mebp, mesp, lcsb: where block checkpoints live; "auto" until the run resolves it. */
  checkpoints: "auto" | "memory" | "disk";
  out: string;
  overwrite: boolean;
  saveEvery: number;
  saveTotalLimit: number;
  resume: string | null;
  metrics: string | null;
  maxMemory: number | null;
  quiet: boolean;
}

type Kind =
  | { type: "string" }
  | { type: "int"; min: number; max?: number }
  | { type: "intOrAuto"; min: number }
  | { type: "number"; min: number; exclusiveMin?: boolean }
  | { type: "enum"; choices: readonly string[] }
  | { type: "targets" }
  | { type: "bool" };

interface FlagSpec {
  flag: string;
  key: keyof TrainArgs;
  kind: Kind;
  default: TrainArgs[keyof TrainArgs];
  meta?: string;
  help: string;
}

const U32_MAX = 4294967295;

/** Every flag, in `--help` order. */
export const FLAGS: readonly FlagSpec[] = [
  {
    flag: "model",
    key: "model",
    kind: { type: "string" },
    default: null,
    meta: "PATH|URL",
    help: "HF model dir or URL (config.json + *.safetensors [+ tokenizer files]); " +
      "omitted: the bundled demo (random-weight model)",
  },
  {
    flag: "data",
    key: "data",
    kind: { type: "string" },
    default: null,
    meta: "FILE.jsonl",
    help: 'training data: {"text"} | {"prompt","completion"} | {"messages"} | {"input_ids"}',
  },
  {
    flag: "eval-data",
    key: "evalData",
    kind: { type: "string" },
    default: null,
    meta: "FILE.jsonl",
    help: "evaluation data (same formats); evaluated at the end and every --eval-every steps",
  },
  {
    flag: "eval-every",
    key: "evalEvery",
    kind: { type: "int", min: 0 },
    default: 0,
    meta: "N",
    help: "evaluate every N steps (0 = only at the end)",
  },
  {
    flag: "compare-base",
    key: "compareBase",
    kind: { type: "bool" },
    default: false,
    help: "with --eval-data: also evaluate the base model (the adapter switched off) and print " +
      "base, base + adapter and the difference (with --steps 0 --adapter-init DIR: an existing " +
      "adapter)",
  },
  {
    flag: "method",
    key: "method",
    kind: { type: "enum", choices: METHOD_NAMES },
    default: DEFAULT_METHOD,
    help: "training method",
  },
  {
    flag: "quant",
    key: "quant",
    kind: { type: "enum", choices: ["int4", "none"] },
    default: "int4",
    help: "base weights: 4-bit (MLX affine, group 64) or f32",
  },
  {
    flag: "weights",
    key: "weights",
    kind: { type: "enum", choices: ["auto", "resident", "streamed"] },
    default: "auto",
    help: "base weights all in memory (resident: +all int4 weights, ~300 MB at 0.5B), or one " +
      "block at a time from an int4 cache file (streamed); auto: streamed when the cache folder " +
      "is writable",
  },
  {
    flag: "cache-dir",
    key: "cacheDir",
    kind: { type: "string" },
    default: null,
    meta: "DIR",
    help: "where streamed weights keep their int4 cache (auto: $XDG_CACHE_HOME/slimtune or " +
      "~/.cache/slimtune; streamed: next to the model) and the tokenizer its snapshot (read " +
      "instead of parsing tokenizer.json: ~15 MB less process memory; default the user's cache " +
      "folder)",
  },
  {
    flag: "rank",
    key: "rank",
    kind: { type: "int", min: 1, max: 4096 },
    default: 8,
    meta: "R",
    help: "LoRA rank",
  },
  {
    flag: "alpha",
    key: "alpha",
    kind: { type: "number", min: 0, exclusiveMin: true },
    default: 16,
    meta: "A",
    help: "LoRA alpha (scale = alpha / rank)",
  },
  {
    flag: "targets",
    key: "targets",
    kind: { type: "targets" },
    default: [...LINEAR_NAMES],
    meta: "LIST",
    help: `comma-separated LoRA targets from ${LINEAR_NAMES.join(",")}`,
  },
  {
    flag: "adapter-init",
    key: "adapterInit",
    kind: { type: "string" },
    default: null,
    meta: "DIR",
    help: "start from an existing PEFT adapter (its r, alpha and targets apply)",
  },
  {
    flag: "optimizer",
    key: "optimizer",
    kind: { type: "enum", choices: ["adamw", "adamw8bit", "sgd"] },
    default: "adamw8bit",
    help: "optimizer state per LoRA parameter: adamw8bit ~2 bytes (8-bit block-wise moments; " +
      "eval loss within 0.33 % of adamw's), adamw 8 bytes (two f32 moments: +25 MB at 0.5B r8), " +
      "sgd none; mezo ignores it (its own SGD)",
  },
  {
    flag: "lr",
    key: "lr",
    kind: { type: "number", min: 0 },
    default: 1e-4,
    meta: "X",
    help: "peak learning rate",
  },
  {
    flag: "weight-decay",
    key: "weightDecay",
    kind: { type: "number", min: 0 },
    default: 0,
    meta: "X",
    help: "decoupled weight decay",
  },
  {
    flag: "max-grad-norm",
    key: "maxGradNorm",
    kind: { type: "number", min: 0 },
    default: 1,
    meta: "X",
    help: "clip the global gradient norm (0 = off)",
  },
  {
    flag: "clip-stash",
    key: "clipStash",
    kind: { type: "enum", choices: ["bf16", "f32"] },
    default: "bf16",
    help: "how clipping holds gradients until the norm is known: bf16 (a bf16 copy, 2 bytes " +
      "per LoRA parameter; exact norm, update within 2^-8 per gradient value) or f32 (exact; " +
      "4 bytes per parameter)",
  },
  {
    flag: "lr-schedule",
    key: "lrSchedule",
    kind: { type: "enum", choices: ["constant", "linear", "cosine"] },
    default: "constant",
    help: "learning-rate schedule after warm-up",
  },
  {
    flag: "warmup-steps",
    key: "warmupSteps",
    kind: { type: "int", min: 0 },
    default: 0,
    meta: "N",
    help: "linear warm-up steps",
  },
  {
    flag: "steps",
    key: "steps",
    kind: { type: "int", min: 0 },
    default: 100,
    meta: "N",
    help: "optimizer steps (0 with --eval-data: only evaluate)",
  },
  {
    flag: "batch-size",
    key: "batchSize",
    kind: { type: "int", min: 1 },
    default: 1,
    meta: "B",
    help: "sequences per micro-batch",
  },
  {
    flag: "grad-accum",
    key: "gradAccum",
    kind: { type: "int", min: 1 },
    default: 1,
    meta: "N",
    help: "micro-batches per optimizer step",
  },
  {
    flag: "seq-len",
    key: "seqLen",
    kind: { type: "int", min: 2 },
    default: 256,
    meta: "T",
    help: "maximum tokens per sequence (longer examples are truncated)",
  },
  {
    flag: "packing",
    key: "packing",
    kind: { type: "enum", choices: ["greedy", "none"] },
    default: "greedy",
    help: "pack whole examples into --seq-len rows, or one example per row",
  },
  {
    flag: "max-line-bytes",
    key: "maxLineBytes",
    kind: { type: "int", min: 1 },
    default: DEFAULT_MAX_LINE_BYTES,
    meta: "N",
    help: "longest data line accepted, in bytes (a longer one is an error naming its line)",
  },
  {
    flag: "seed",
    key: "seed",
    kind: { type: "int", min: 0, max: U32_MAX },
    default: 0,
    meta: "S",
    help: "seed for LoRA init, data order and MeZO directions",
  },
  {
    flag: "threads",
    key: "threads",
    kind: { type: "int", min: 0, max: 256 },
    default: 0,
    meta: "N",
    help: "kernel threads; 0 = the cores that measurably speed up",
  },
  {
    flag: "lcsb-groups",
    key: "lcsbGroups",
    kind: { type: "int", min: 1 },
    default: METHOD_DEFAULTS.lcsb.groups,
    meta: "K",
    help: "lcsb: number of layer groups (one is back-propagated per step)",
  },
  {
    flag: "lcsb-pattern",
    key: "lcsbPattern",
    kind: { type: "enum", choices: LCSB_PATTERNS },
    default: METHOD_DEFAULTS.lcsb.pattern,
    help: "lcsb: how layers are grouped",
  },
  {
    flag: "mezo-eps",
    key: "mezoEps",
    kind: { type: "number", min: 0, exclusiveMin: true },
    default: METHOD_DEFAULTS.mezo.eps,
    meta: "E",
    help: "mezo: perturbation size",
  },
  {
    flag: "head-chunk-rows",
    key: "headChunkRows",
    kind: { type: "int", min: 0 },
    default: 0,
    meta: "N",
    help: "vocabulary rows per fused LM-head chunk (0 = the method's default)",
  },
  {
    flag: "keep-tapes",
    key: "keepTapes",
    kind: { type: "intOrAuto", min: 0 },
    default: "auto",
    meta: "N|auto",
    help: "mebp, mesp: keep the activations of the top N blocks from the forward, so their " +
      "backward recomputes nothing (faster, more memory; all of them is full's speed and " +
      "memory); auto: as many as fit in 90 % of --max-memory, none without it",
  },
  {
    flag: "checkpoints",
    key: "checkpoints",
    kind: { type: "enum", choices: ["auto", "memory", "disk"] },
    default: "auto",
    help: "mebp, mesp, lcsb: where each block's input waits for the backward: memory (one " +
      "[tokens, hidden] f32 buffer per layer: 22 MB at 0.5B, seq 256) or disk (a scratch file " +
      "in the cache folder, removed when the run ends: one such buffer in memory, plus a write " +
      "and a read of each per step, mostly served by the page cache); auto: disk when the " +
      "weights are streamed",
  },
  {
    flag: "out",
    key: "out",
    kind: { type: "string" },
    default: "out/adapter",
    meta: "DIR",
    help: "final PEFT adapter (+ loss.svg); checkpoints in DIR/checkpoint-N",
  },
  {
    flag: "overwrite",
    key: "overwrite",
    kind: { type: "bool" },
    default: false,
    help: "let a new run replace the checkpoints and adapter another run left in --out",
  },
  {
    flag: "save-every",
    key: "saveEvery",
    kind: { type: "int", min: 0 },
    default: 0,
    meta: "N",
    help: "write a checkpoint every N steps (0 = only when interrupted)",
  },
  {
    flag: "save-total-limit",
    key: "saveTotalLimit",
    kind: { type: "int", min: 0 },
    default: 0,
    meta: "N",
    help: "keep only the newest N checkpoints (0 = keep all)",
  },
  {
    flag: "resume",
    key: "resume",
    kind: { type: "string" },
    default: null,
    meta: "DIR",
    help: "continue from a checkpoint dir, or the latest DIR/checkpoint-N",
  },
  {
    flag: "metrics",
    key: "metrics",
    kind: { type: "string" },
    default: null,
    meta: "FILE.jsonl",
    help: "append one JSON object per step (step, loss, lr, tokens_per_s, memory, eval_loss)",
  },
  {
    flag: "max-memory",
    key: "maxMemory",
    kind: { type: "number", min: 1 },
    default: null,
    meta: "MB",
    help: "whole-process budget in MB (2^20 bytes): refused before the start when the plan " +
      "does not fit; checked each step, stopping with a checkpoint when the process goes over",
  },
  {
    flag: "quiet",
    key: "quiet",
    kind: { type: "bool" },
    default: false,
    help: "no progress output",
  },
];

/** The defaults, as a complete {@link TrainArgs}. */
export function defaultTrainArgs(): TrainArgs {
  const out: Record<string, unknown> = {};
  for (const f of FLAGS) out[f.key] = Array.isArray(f.default) ? [...f.default] : f.default;
  return out as unknown as TrainArgs;
}

function parseValue(spec: FlagSpec, raw: string): unknown {
  const flag = `--${spec.flag}`;
  const k = spec.kind;
  switch (k.type) {
    case "string":
      if (raw === "") throw new UsageError(flag, "must not be empty");
      return raw;
    case "bool":
      return true;
    case "enum":
      if (!k.choices.includes(raw)) {
        throw new UsageError(flag, `must be one of ${k.choices.join("|")}, got "${raw}"`);
      }
      return raw;
    case "int":
      return parseIntFlag(flag, raw, k.min, k.max);
    case "intOrAuto":
      return raw.trim() === "auto" ? "auto" : parseIntFlag(flag, raw, k.min);
    case "number":
      return parseNumberFlag(flag, raw, k.min, k.exclusiveMin ?? false);
    case "targets": {
      const names = raw.split(",").map((s) => s.trim().replace(/_proj$/, ""));
      const seen = new Set<LinearName>();
      for (const n of names) {
        if (!(LINEAR_NAMES as readonly string[]).includes(n)) {
          throw new UsageError(
            flag,
            `unknown target "${n}" (choose from ${LINEAR_NAMES.join(",")})`,
          );
        }
        seen.add(n as LinearName);
      }
      return LINEAR_NAMES.filter((n) => seen.has(n));
    }
  }
}

/** Parsed flags, which of them were given explicitly, and whether `--help` was asked for. */
export interface ParsedTrainArgs {
  args: TrainArgs;
  given: Set<keyof TrainArgs>;
  help: boolean;
}

/** Parses `argv` (without the program name). Throws {@link UsageError}. */
export function parseTrainArgs(argv: string[]): ParsedTrainArgs {
  const options: Record<string, { type: "string" | "boolean"; short?: string }> = {
    help: { type: "boolean", short: "h" },
  };
  for (const f of FLAGS) options[f.flag] = { type: f.kind.type === "bool" ? "boolean" : "string" };
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseFlags(argv, options));
  } catch (e) {
    throw usageErrorFromParseArgs(e, "every option is a --flag");
  }
  const args = defaultTrainArgs() as unknown as Record<string, unknown>;
  const given = new Set<keyof TrainArgs>();
  for (const f of FLAGS) {
    const v = values[f.flag];
    if (v === undefined) continue;
    args[f.key] = parseValue(f, typeof v === "string" ? v : "");
    given.add(f.key);
  }
  return { args: args as unknown as TrainArgs, given, help: values.help === true };
}

function formatDefault(v: unknown): string {
  if (v === null) return "";
  if (Array.isArray(v)) return v.join(",");
  return String(v);
}

/** `--help` text: usage, every flag with its default, and examples. */
export function helpText(): string {
  const lines = [
    "slimtune: fine-tune LoRA adapters of LLMs (Qwen2.5, Qwen3, Llama 3.x, SmolLM2, Gemma 3) with",
    "4-bit base weights and a small memory budget.",
    "",
    "usage: deno run -A train.ts [options]",
    "       (no options: the bundled demo, about a minute)",
    "",
    "options:",
  ];
  const left = (f: FlagSpec) => {
    const meta = f.kind.type === "enum" ? f.kind.choices.join("|") : f.meta;
    return `  --${f.flag}${meta ? " " + meta : ""}`;
  };
  const width = Math.max(...FLAGS.map((f) => left(f).length)) + 2;
  for (const f of FLAGS) {
    const d = formatDefault(f.default);
    const help = f.help + (d && f.kind.type !== "bool" ? ` (default ${d})` : "");
    lines.push(left(f).padEnd(width) + help);
  }
  lines.push("  -h, --help".padEnd(width) + "print this help");
  lines.push(
    "",
    "examples:",
    "  deno run -A train.ts",
    "  deno run -A train.ts --model ./Qwen2.5-0.5B-Instruct --data chat.jsonl --steps 200 \\",
    "      --out out/my-adapter --save-every 50 --metrics out/metrics.jsonl",
    "  deno run -A train.ts --resume out/my-adapter",
  );
  return lines.join("\n") + "\n";
}
