/**
 * Checkpoint directories with Deno file APIs. `DIR/checkpoint-N` is written as
 * `DIR/checkpoint-N.tmp` (every file fsynced) and renamed into place only when complete, so a
 * crash or SIGKILL at any moment leaves either the previous checkpoints or the new one, never a
 * partial one. `--resume` accepts a checkpoint directory or a run directory (latest checkpoint).
 *
 * @example
 * ```ts
 * import { findLatestCheckpoint } from "./run_state.ts";
 * const dir = await findLatestCheckpoint("out/adapter"); // "out/adapter/checkpoint-40" or null
 * ```
 */
import { openFileSource } from "./file_source.ts";
import type { ModelConfig } from "../model/config.ts";
import { SafetensorsFile } from "../io/safetensors.ts";
import { reason, writeFileAtomic } from "./fs.ts";
import {
  CHECKPOINT_FILES,
  decodeCheckpoint,
  encodeCheckpoint,
  parseTrainerState,
  type TrainingState,
} from "../train/run_state.ts";

async function removeIfExists(path: string): Promise<void> {
  try {
    await Deno.remove(path, { recursive: true });
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
}

/**
 * Writes `state` as `runDir/checkpoint-<step>` atomically; returns the directory. On failure (a
 * full disk, say) the partial `.tmp` directory is removed, every earlier checkpoint is as it was,
 * and the error names the checkpoint.
 */
export async function writeCheckpoint(runDir: string, state: TrainingState): Promise<string> {
  const final = `${runDir}/checkpoint-${state.step}`;
  const tmp = `${final}.tmp`;
  try {
    await Deno.mkdir(runDir, { recursive: true });
    await removeIfExists(tmp);
    await Deno.mkdir(tmp);
    for (const [name, bytes] of encodeCheckpoint(state)) {
      await writeFileAtomic(`${tmp}/${name}`, bytes);
    }
  } catch (e) {
    await removeIfExists(tmp).catch(() => {});
    throw new CheckpointWriteError(final, e);
  }
  // A checkpoint of the same step may exist (a resumed run saving again): move it aside first,
  // so that some complete checkpoint-N exists at every instant.
  const old = `${final}.old`;
  await removeIfExists(old);
  let hadOld = false;
  try {
    await Deno.rename(final, old);
    hadOld = true;
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  await Deno.rename(tmp, final);
  if (hadOld) await removeIfExists(old);
  return final;
}

/** A checkpoint could not be written; the earlier ones are untouched. */
export class CheckpointWriteError extends Error {
  constructor(readonly dir: string, cause: unknown) {
    super(`cannot write checkpoint ${dir}: ${reason(cause)}`, { cause });
    this.name = "CheckpointWriteError";
  }
}

/** True when `dir` holds a complete checkpoint. */
export async function isCheckpointDir(dir: string): Promise<boolean> {
  try {
    return (await Deno.stat(`${dir}/${CHECKPOINT_FILES.trainerState}`)).isFile;
  } catch {
    return false;
  }
}

/** The complete `checkpoint-N` with the highest N inside `runDir`, or null. */
export async function findLatestCheckpoint(runDir: string): Promise<string | null> {
  let best: [number, string] | null = null;
  try {
    for await (const e of Deno.readDir(runDir)) {
      const m = /^checkpoint-(\d+)$/.exec(e.name);
      if (!m || !e.isDirectory) continue;
      const n = Number(m[1]);
      const dir = `${runDir}/${e.name}`;
      if ((best === null || n > best[0]) && await isCheckpointDir(dir)) best = [n, dir];
    }
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
  return best ? best[1] : null;
}

/**
 * Why `dir` is not a checkpoint to resume from, or null when it is one: every file is present,
 * `trainer_state.json` parses and its last loss is finite, and both safetensors files have valid
 * headers that match their sizes (so a truncated file is caught without reading the tensors).
 */
export async function checkpointProblem(dir: string): Promise<string | null> {
  try {
    const text = await Deno.readTextFile(`${dir}/${CHECKPOINT_FILES.trainerState}`);
    const st = parseTrainerState(text, dir);
    const last = st.history[st.history.length - 1];
    if (last && !Number.isFinite(last.loss)) return `its last loss is ${last.loss}`;
    JSON.parse(await Deno.readTextFile(`${dir}/${CHECKPOINT_FILES.adapterConfig}`));
    for (const name of [CHECKPOINT_FILES.adapterWeights, CHECKPOINT_FILES.optimizer]) {
      const src = await openFileSource(`${dir}/${name}`);
      try {
        await SafetensorsFile.open(src);
      } finally {
        await src.close();
      }
    }
    return null;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return `a file is missing (${reason(e)})`;
    return (e as Error).message.replace(`${dir}/`, "");
  }
}

/** Where `--resume` continues from. */
export interface ResumePoint {
  /** The checkpoint directory. */
  checkpoint: string;
  /** The run directory holding it: where the resumed run writes unless `--out` is given. */
  runDir: string;
  /** Newer checkpoints that did not validate, newest first, with the reason. */
  skipped: { dir: string; problem: string }[];
}

/**
 * `--resume PATH`: PATH itself if it is a checkpoint directory (which must validate), else the
 * newest `PATH/checkpoint-N` that validates; damaged newer ones are listed in `skipped`.
 */
export async function resolveResume(path: string): Promise<ResumePoint> {
  const dir = path.replace(/(.)\/+$/, "$1");
  if (/(^|\/)checkpoint-\d+$/.test(dir) || await isCheckpointDir(dir)) {
    const problem = await checkpointProblem(dir);
    if (problem) throw new Error(`${dir}: damaged checkpoint (${problem})`);
    const i = dir.lastIndexOf("/");
    return { checkpoint: dir, runDir: i < 0 ? "." : dir.slice(0, i) || "/", skipped: [] };
  }
  const steps: number[] = [];
  try {
    for await (const e of Deno.readDir(dir)) {
      const m = /^checkpoint-(\d+)$/.exec(e.name);
      if (m && e.isDirectory) steps.push(Number(m[1]));
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotADirectory)) throw e;
  }
  const skipped: ResumePoint["skipped"] = [];
  for (const step of steps.sort((a, b) => b - a)) {
    const checkpoint = `${dir}/checkpoint-${step}`;
    const problem = await checkpointProblem(checkpoint);
    if (problem === null) return { checkpoint, runDir: dir, skipped };
    skipped.push({ dir: checkpoint, problem });
  }
  if (skipped.length) {
    throw new Error(
      `${dir}: no valid checkpoint (${skipped.map((s) => `${s.dir}: ${s.problem}`).join("; ")})`,
    );
  }
  throw new Error(`${dir}: no checkpoint found (expected ${dir}/checkpoint-N)`);
}

/** `--resume DIR`: DIR itself if it is a checkpoint, else its newest valid checkpoint. */
export async function resolveResumeDir(dir: string): Promise<string> {
  return (await resolveResume(dir)).checkpoint;
}

/**
 * Reads only `trainer_state.json`: the run's arguments and data identity, needed before the model
 * is opened.
 */
export async function readCheckpointHead(
  dir: string,
): Promise<ReturnType<typeof parseTrainerState>> {
  const text = await Deno.readTextFile(`${dir}/${CHECKPOINT_FILES.trainerState}`);
  return parseTrainerState(text, dir);
}

/** Reads a whole checkpoint directory. */
export async function readCheckpoint(dir: string, model: ModelConfig): Promise<TrainingState> {
  const adapterWeights = await openFileSource(`${dir}/${CHECKPOINT_FILES.adapterWeights}`);
  const optimizer = await openFileSource(`${dir}/${CHECKPOINT_FILES.optimizer}`);
  try {
    return await decodeCheckpoint({
      name: dir,
      trainerStateJson: await Deno.readTextFile(`${dir}/${CHECKPOINT_FILES.trainerState}`),
      adapterConfigJson: await Deno.readTextFile(`${dir}/${CHECKPOINT_FILES.adapterConfig}`),
      adapterWeights,
      optimizer,
    }, model);
  } finally {
    await adapterWeights.close();
    await optimizer.close();
  }
}
