/**
 * Checkpoint directories with Deno file APIs. `DIR/checkpoint-N` is written as
 * `DIR/checkpoint-N.tmp` (every file fsynced) and renamed into place only when complete, so a
 * crash or SIGKILL at any moment leaves either the previous checkpoints or the new one, never a
 * partial one. `--resume` accepts a checkpoint directory or a run directory (latest checkpoint).
 *
 * @example
 * ```ts
 * import { findLatestCheckpoint } from "./checkpoint_deno.ts";
 * const dir = await findLatestCheckpoint("out/adapter"); // "out/adapter/checkpoint-40" or null
 * ```
 */
import { openFileSource } from "../io/file_source_deno.ts";
import type { ModelConfig } from "../model/config.ts";
import { writeFileAtomic } from "../runtime/deno_fs.ts";
import {
  CHECKPOINT_FILES,
  decodeCheckpoint,
  encodeCheckpoint,
  parseTrainerState,
  type TrainingState,
} from "./checkpoint.ts";

async function removeIfExists(path: string): Promise<void> {
  try {
    await Deno.remove(path, { recursive: true });
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
}

/** Writes `state` as `runDir/checkpoint-<step>` atomically; returns the directory. */
export async function writeCheckpoint(runDir: string, state: TrainingState): Promise<string> {
  const final = `${runDir}/checkpoint-${state.step}`;
  const tmp = `${final}.tmp`;
  await Deno.mkdir(runDir, { recursive: true });
  await removeIfExists(tmp);
  await Deno.mkdir(tmp);
  for (const [name, bytes] of encodeCheckpoint(state)) {
    await writeFileAtomic(`${tmp}/${name}`, bytes);
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

/** `--resume DIR`: DIR itself if it is a checkpoint, else its latest checkpoint. */
export async function resolveResumeDir(dir: string): Promise<string> {
  if (await isCheckpointDir(dir)) return dir;
  const latest = await findLatestCheckpoint(dir);
  if (!latest) throw new Error(`${dir}: no checkpoint found (expected ${dir}/checkpoint-N)`);
  return latest;
}

/** Reads only `trainer_state.json` (to recover the run's arguments before opening the model). */
export async function readCheckpointArgs(dir: string): Promise<Record<string, unknown>> {
  const text = await Deno.readTextFile(`${dir}/${CHECKPOINT_FILES.trainerState}`);
  return parseTrainerState(text, dir).args;
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
