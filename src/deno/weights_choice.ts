/**
 * `--weights auto` (the default): stream the base weights one block at a time from an int4 cache
 * file when there is somewhere to write that cache, else keep them all resident. Streaming holds
 * one block of the model instead of all of them (Qwen2.5-0.5B's run peaks at 483.6 MB resident,
 * 198.0 MB streamed: bench/results/user_path.md), at the price of a cache file and of reading it every step, which the page
 * cache usually serves.
 *
 * The cache goes to `--cache-dir` when given, else to the user's cache folder
 * (`$SLIMTUNE_CACHE_DIR`, else `$XDG_CACHE_HOME/slimtune`, else `~/.cache/slimtune`): never into
 * the model's folder, which the user did not name as an output.
 */
import { environment, userCacheDir } from "./cache_dir.ts";
import { checkWritableDir } from "./run_dir.ts";

/** The weight store a run uses, and why, for the log. */
export interface WeightsChoice {
  weights: "resident" | "streamed";
  /** Where the streamed cache goes (null: resident, or the explicit --weights streamed default). */
  cacheDir: string | null;
  /** One line saying what was chosen and the flag that changes it; null when given explicitly. */
  note: string | null;
}

/** Resolves `--weights` (auto, resident or streamed) and the cache folder it needs. */
export async function chooseWeights(
  weights: "auto" | "resident" | "streamed",
  cacheDir: string | null,
  env: Record<string, string | undefined> = environment(),
): Promise<WeightsChoice> {
  if (weights !== "auto") return { weights, cacheDir, note: null };
  const dir = cacheDir ?? userCacheDir(env);
  if (dir !== null) {
    try {
      await checkWritableDir(dir, cacheDir ? "--cache-dir" : "--weights");
      return {
        weights: "streamed",
        cacheDir: dir,
        note: `weights: streamed one block at a time from an int4 cache in ${dir} ` +
          `(--weights auto; --weights resident keeps all of them in memory)`,
      };
    } catch (e) {
      if (cacheDir) throw e; // a --cache-dir that cannot be written is the user's to fix
    }
  }
  return {
    weights: "resident",
    cacheDir: null,
    note: `weights: resident, all in memory (--weights auto: ${
      dir ?? "no cache folder (HOME unset)"
    }${dir ? " is not writable" : ""}; --cache-dir DIR streams them from a cache there)`,
  };
}
