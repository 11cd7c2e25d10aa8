/**
 * What `train.ts` checks before it loads anything: every flag against the others and against the
 * model's `config.json`, the planned memory against what a wasm memory can hold, every output
 * path for writability and against the inputs, the run directory for another run's files, and on
 * `--resume` the data against the identity the checkpoint recorded. Each failure is a
 * {@link UsageError} naming the flag, so a run that would fail later fails here, in a second,
 * having changed nothing on disk.
 */
import type { ModelConfig } from "../model/config.ts";
import {
  keepsTapes,
  type MemoryPlan,
  type MemoryPlanOptions,
  planMemory,
} from "../methods/memory_plan.ts";
import { checkpointsBlocks, type LcsbSettings } from "../methods/registry.ts";
import { formatMB } from "../runtime/memory.ts";
import type { TrainArgs } from "../train/args.ts";
import { UsageError } from "../cli/usage.ts";
import type { ResumePoint } from "./run_state.ts";
import { type DataIdentity, dataIdentity, describeDataChange } from "../train/data_identity.ts";
import { headChunkRowsFor } from "./model.ts";
import { parseAdapterConfig } from "../io/peft_adapter.ts";
import {
  canonicalPath,
  checkAppendableFile,
  checkWritableDir,
  RUN_OUTPUT_FILES,
  runEntries,
} from "./run_dir.ts";

/** The largest wasm32 memory: what one training session can ever address. */
export const WASM_MEMORY_LIMIT_BYTES = 2 ** 32;

/** Flags that only one method reads: given with another method they would be ignored. */
const METHOD_FLAGS: [keyof TrainArgs, string, TrainArgs["method"]][] = [
  ["lcsbGroups", "--lcsb-groups", "lcsb"],
  ["lcsbPattern", "--lcsb-pattern", "lcsb"],
  ["mezoEps", "--mezo-eps", "mezo"],
];

/** Flags that would be ignored, and values that cannot work with each other. */
export function checkFlagCombinations(args: TrainArgs, given: ReadonlySet<keyof TrainArgs>): void {
  if (given.has("evalEvery") && args.evalData === null) {
    throw new UsageError("--eval-every", "needs --eval-data (there is nothing to evaluate)");
  }
  for (const [key, flag, method] of METHOD_FLAGS) {
    if (given.has(key) && args.method !== method) {
      throw new UsageError(flag, `only used by --method ${method} (this run is ${args.method})`);
    }
  }
  if (given.has("keepTapes") && !keepsTapes(args.method)) {
    throw new UsageError(
      "--keep-tapes",
      `only used by --method mebp or mesp (this run is ${args.method})`,
    );
  }
  if (given.has("checkpoints") && !checkpointsBlocks(args.method)) {
    throw new UsageError(
      "--checkpoints",
      `only used by --method mebp, mesp or lcsb (this run is ${args.method}, which ` +
        `${args.method === "full" ? "keeps every tape" : "has no backward"})`,
    );
  }
  if (given.has("clipStash") && (args.maxGradNorm === 0 || args.method === "mezo")) {
    throw new UsageError(
      "--clip-stash",
      args.method === "mezo" ? "mezo has no gradients to clip" : "needs --max-grad-norm > 0",
    );
  }
}

/** `--rank`, `--alpha`, `--targets` given with `--adapter-init` must agree with the adapter. */
export async function checkAdapterInitFlags(
  args: TrainArgs,
  given: ReadonlySet<keyof TrainArgs>,
): Promise<void> {
  if (!args.adapterInit) return;
  const file = `${args.adapterInit}/adapter_config.json`;
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (e) {
    const why = e instanceof Deno.errors.NotFound ? "not found" : (e as Error).message;
    throw new UsageError("--adapter-init", `${file}: ${why}`);
  }
  let info;
  try {
    info = parseAdapterConfig(text, file);
  } catch (e) {
    throw new UsageError("--adapter-init", (e as Error).message);
  }
  const checks: [keyof TrainArgs, string, string, string][] = [
    ["rank", "--rank", String(args.rank), String(info.r)],
    ["alpha", "--alpha", String(args.alpha), String(info.alpha)],
    ["targets", "--targets", args.targets.join(","), info.targets.join(",")],
  ];
  for (const [key, flag, mine, theirs] of checks) {
    if (given.has(key) && mine !== theirs) {
      throw new UsageError(
        flag,
        `${mine} disagrees with --adapter-init ${args.adapterInit} (${theirs}); the adapter's ` +
          `own value applies, so drop ${flag}`,
      );
    }
  }
}

/** Flags checked against the model's configuration and the memory a session can have. */
export function checkFlagsAgainstModel(
  args: TrainArgs,
  given: ReadonlySet<keyof TrainArgs>,
  config: ModelConfig,
  model: string,
): void {
  if (args.seqLen > config.maxPositionEmbeddings) {
    throw new UsageError(
      "--seq-len",
      `${args.seqLen} is above the model's max_position_embeddings ${config.maxPositionEmbeddings}` +
        ` (${model})`,
    );
  }
  if (given.has("lcsbGroups") && args.lcsbGroups > config.numLayers) {
    throw new UsageError(
      "--lcsb-groups",
      `${args.lcsbGroups} is more than the model's ${config.numLayers} layers`,
    );
  }
  if (typeof args.keepTapes === "number" && args.keepTapes > config.numLayers) {
    throw new UsageError(
      "--keep-tapes",
      `${args.keepTapes} is more than the model's ${config.numLayers} layers`,
    );
  }
  const plan = runMemoryPlan(args, config, args.seqLen, {
    rank: args.rank,
    alpha: args.alpha,
    targets: args.targets,
  });
  const system = systemMemoryBytes();
  const ceiling = Math.min(WASM_MEMORY_LIMIT_BYTES, system ?? Infinity);
  if (plan.total > ceiling) {
    const what = ceiling === WASM_MEMORY_LIMIT_BYTES
      ? `the ${formatMB(ceiling)} a wasm memory can hold`
      : `this machine's ${formatMB(ceiling)} of memory`;
    const flag = args.batchSize > 1 ? "--batch-size" : "--seq-len";
    throw new UsageError(
      flag,
      `${args.batchSize} x ${args.seqLen} tokens per micro-batch plan a working set of ` +
        `${formatMB(plan.total)}, more than ${what}; lower --batch-size or --seq-len`,
    );
  }
}

/**
 * The session's memory plan for these flags, at `seqLen` tokens per row and this adapter, with
 * `keptTapes` kept tapes (default: `--keep-tapes` when a number, else none).
 */
export function runMemoryPlan(
  args: TrainArgs,
  config: ModelConfig,
  seqLen: number,
  lora: { rank: number; alpha: number; targets: TrainArgs["targets"] },
  keptTapes = typeof args.keepTapes === "number" ? args.keepTapes : 0,
): MemoryPlan {
  return planMemory(runMemoryPlanOptions(args, config, seqLen, lora, keptTapes));
}

/**
 * lcsb's grouping for a run: `--lcsb-groups` capped at the model's layers (a larger count given
 * outright is refused before this), and `--lcsb-pattern`; what the session and the plan both use.
 */
export function lcsbSettingsFor(
  args: Pick<TrainArgs, "lcsbGroups" | "lcsbPattern">,
  config: Pick<ModelConfig, "numLayers">,
): LcsbSettings {
  return { groups: Math.min(args.lcsbGroups, config.numLayers), pattern: args.lcsbPattern };
}

/** The {@link planMemory} options of {@link runMemoryPlan}. */
export function runMemoryPlanOptions(
  args: TrainArgs,
  config: ModelConfig,
  seqLen: number,
  lora: { rank: number; alpha: number; targets: TrainArgs["targets"] },
  keptTapes: number,
): MemoryPlanOptions {
  return {
    config,
    method: args.method,
    seqLen,
    batchSize: args.batchSize,
    lora,
    optimizer: args.optimizer,
    headChunkRows: headChunkRowsFor(args),
    lcsb: lcsbSettingsFor(args, config),
    gradAccum: args.gradAccum,
    maxGradNorm: args.maxGradNorm,
    clipStash: args.clipStash,
    keptTapes: keepsTapes(args.method) ? keptTapes : 0,
    checkpoints: args.checkpoints === "disk" ? "spill" : "memory",
  };
}

function systemMemoryBytes(): number | null {
  try {
    return Deno.systemMemoryInfo().total || null;
  } catch {
    return null;
  }
}

/** Every file a run reads: an output path must be none of these, nor inside their folders. */
interface Inputs {
  /** [flag, canonical path] of each input file. */
  files: [string, string][];
  dirs: string[];
}

async function inputsOf(args: TrainArgs, resume: ResumePoint | null): Promise<Inputs> {
  const files: [string, string][] = [];
  const dirs: string[] = [];
  if (args.data) files.push(["--data", await canonicalPath(args.data)]);
  if (args.evalData) files.push(["--eval-data", await canonicalPath(args.evalData)]);
  if (args.model && !/^https?:\/\//i.test(args.model)) dirs.push(await canonicalPath(args.model));
  if (args.adapterInit) dirs.push(await canonicalPath(args.adapterInit));
  if (resume) dirs.push(await canonicalPath(resume.checkpoint));
  return { files, dirs };
}

function isInside(path: string, dir: string): boolean {
  return path === dir || path.startsWith(dir.endsWith("/") ? dir : dir + "/");
}

/**
 * Output paths are writable and disjoint from the inputs: `--metrics` is no input file and lies
 * in no input folder; `--out` is not an input folder; `--cache-dir` can be written.
 */
export async function checkOutputPaths(args: TrainArgs, resume: ResumePoint | null): Promise<void> {
  const inputs = await inputsOf(args, resume);
  if (args.metrics) {
    const m = await canonicalPath(args.metrics);
    for (const [flag, f] of inputs.files) {
      if (m === f) {
        throw new UsageError("--metrics", `${args.metrics} is the ${flag} file; name a new file`);
      }
    }
    for (const d of inputs.dirs) {
      if (isInside(m, d)) {
        throw new UsageError("--metrics", `${args.metrics} is inside the input folder ${d}`);
      }
    }
    await checkAppendableFile(args.metrics, "--metrics");
  }
  const out = await canonicalPath(args.out);
  for (const d of inputs.dirs) {
    if (out === d || (args.adapterInit && isInside(out, d))) {
      throw new UsageError("--out", `${args.out} is an input folder (${d}); name another --out`);
    }
  }
  for (const [flag, f] of inputs.files) {
    if (out === f) throw new UsageError("--out", `${args.out} is the ${flag} file; name a folder`);
  }
  if (args.metrics) {
    const m = await canonicalPath(args.metrics);
    const owned = RUN_OUTPUT_FILES.some((n) => m === `${out}/${n}`) ||
      (isInside(m, out) && /^\/checkpoint-\d+/.test(m.slice(out.length)));
    if (owned) {
      throw new UsageError("--metrics", `${args.metrics} is a file the run writes in --out`);
    }
  }
  await checkWritableDir(args.out, "--out");
  if (args.cacheDir) await checkWritableDir(args.cacheDir, "--cache-dir");
}

/**
 * What `--out` holds from another run, which a new run would mix with its own: the entries, or an
 * empty list. A resumed run writing where it was resumed from holds its own run.
 */
export async function otherRunIn(
  args: TrainArgs,
  resume: ResumePoint | null,
): Promise<string[]> {
  if (resume && await canonicalPath(resume.runDir) === await canonicalPath(args.out)) return [];
  return await runEntries(args.out);
}

/** The identity of `--data`, checked against the checkpoint's on resume. */
export async function checkDataIdentity(
  args: TrainArgs,
  recorded: DataIdentity | null,
): Promise<DataIdentity | null> {
  if (!args.data || args.steps === 0) return null;
  const file = await Deno.open(args.data, { read: true });
  const now = await dataIdentity(file.readable);
  if (recorded) {
    const change = describeDataChange(recorded, now);
    if (change) {
      throw new UsageError(
        "--data",
        `${args.data} is not the data this run was trained on (${change}); resume with the ` +
          `same file, or start a new run with another --out`,
      );
    }
  }
  return now;
}
