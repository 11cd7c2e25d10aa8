/**
 * `--checkpoints auto` (the default): mebp, mesp and lcsb keep their block-input checkpoints in a
 * scratch file in the cache folder when the weights are streamed (the cache folder is writable by
 * then), else in memory. On disk they cost the process one `[N, D]` f32 buffer instead of one per
 * checkpointed block (Qwen2.5-0.5B at seq 256: 0.9 MB instead of 22 MB), at the price of writing
 * and reading them once a step, which the page cache usually serves.
 *
 * The scratch file goes to `--cache-dir` when given, else to the user's cache folder: never into
 * the model's folder or `--out`, which the user did not name for it.
 */
import { environment, userCacheDir } from "./cache_dir.ts";
import { UsageError } from "../cli/usage.ts";
import { checkpointsBlocks, type MethodName } from "../methods/registry.ts";
import { checkWritableDir } from "./run_dir.ts";

/** Where a run keeps its block checkpoints, and why, for the log. */
export interface CheckpointsChoice {
  checkpoints: "memory" | "disk";
  /** The folder of the scratch file (null: in memory). */
  dir: string | null;
  /** One line saying what was chosen and the flag that changes it; null when nothing to say. */
  note: string | null;
}

/**
 * Resolves `--checkpoints` (auto, memory or disk) for `method` with the weights as resolved and
 * the `--cache-dir` given (null: none). `savedBytes`: what disk saves over memory, for the note.
 */
export async function chooseCheckpoints(
  checkpoints: "auto" | "memory" | "disk",
  o: {
    method: MethodName;
    weights: "resident" | "streamed";
    cacheDir: string | null;
    savedBytes: number;
  },
  env: Record<string, string | undefined> = environment(),
): Promise<CheckpointsChoice> {
  const memory = (note: string | null) => ({ checkpoints: "memory" as const, dir: null, note });
  // The flag given with such a method is refused earlier (checkFlagCombinations).
  if (!checkpointsBlocks(o.method) || checkpoints === "memory") return memory(null);
  const dir = o.cacheDir ?? userCacheDir(env);
  const flag = o.cacheDir ? "--cache-dir" : "--checkpoints";
  if (checkpoints === "disk") {
    if (dir === null) {
      throw new UsageError(
        "--checkpoints",
        "disk needs a folder for its scratch file: give --cache-dir DIR (HOME is unset)",
      );
    }
    await checkWritableDir(dir, flag);
    return { checkpoints: "disk", dir, note: null };
  }
  const saved = `${(o.savedBytes / 2 ** 20).toFixed(1)} MB`;
  if (o.weights === "streamed" && dir !== null) {
    try {
      await checkWritableDir(dir, flag);
      return {
        checkpoints: "disk",
        dir,
        note: `checkpoints: block inputs in a scratch file in ${dir}, ${saved} less memory ` +
          `(--checkpoints auto with streamed weights; --checkpoints memory keeps them in memory)`,
      };
    } catch (e) {
      if (o.cacheDir) throw e; // a --cache-dir that cannot be written is the user's to fix
    }
  }
  return memory(
    `checkpoints: block inputs in memory (--checkpoints auto: ${
      o.weights === "streamed" ? `${dir ?? "no cache folder"} is not writable` : "resident weights"
    }; --checkpoints disk puts them in a scratch file: ${saved} less memory)`,
  );
}
