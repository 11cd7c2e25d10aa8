/**
 * Another run's entries in `--out`: replaced, or the refusal that says how to continue, replace or
 * avoid them.
 */
import { UsageError } from "../cli/usage.ts";
import type { TrainArgs } from "./args.ts";

/**
 * The entries of `other` (another run's, found in `args.out`) that this run replaces, or null
 * where there are none. `--overwrite` replaces them, and so does the demo in its own folder (no
 * `--model`, no `--out` given); otherwise a {@link UsageError} naming `--out` refuses the run.
 */
export function otherRunToReplace(
  args: Pick<TrainArgs, "out" | "overwrite" | "model">,
  given: ReadonlySet<keyof TrainArgs>,
  other: string[],
): string[] | null {
  if (other.length === 0) return null;
  // The demo's own folder is the demo's to replace; anyone else's run needs --overwrite.
  if (args.overwrite || (args.model === null && !given.has("out"))) return other;
  const shown = other.length > 3 ? [...other.slice(0, 3), "..."] : other;
  throw new UsageError(
    "--out",
    `${args.out} already holds another run (${shown.join(", ")}); continue it with ` +
      `--resume ${args.out}, replace it with --overwrite, or choose another --out`,
  );
}
