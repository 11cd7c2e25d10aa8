/**
 * What `train.ts` checks on disk before it loads anything (the checks of the flags themselves are
 * src/train/preflight.ts): `--adapter-init`'s config against the flags, every output path for
 * writability and against the inputs, the run directory for another run's files, and on
 * `--resume` the data against the identity the checkpoint recorded. Each failure is a
 * {@link UsageError} naming the flag, so a run that would fail later fails here, in a second,
 * having changed nothing on disk.
 */
import type { TrainArgs } from "../train/args.ts";
import { UsageError } from "../cli/usage.ts";
import type { ResumePoint } from "./run_state.ts";
import { type DataIdentity, dataIdentity, describeDataChange } from "../train/data_identity.ts";
import { parseAdapterConfig } from "../io/peft_adapter.ts";
import {
  canonicalPath,
  checkAppendableFile,
  checkWritableDir,
  RUN_OUTPUT_FILES,
  runEntries,
} from "./run_dir.ts";

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

/** This machine's memory in bytes, or null where Deno cannot read it. */
export function systemMemoryBytes(): number | null {
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
