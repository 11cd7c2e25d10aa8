/**
 * A checkpoint directory on the local file system as {@link CheckpointFiles} (Deno).
 *
 * @example
 * ```ts
 * import { dirFiles } from "./model_source_files.ts";
 * const files = dirFiles("./Qwen2.5-0.5B");
 * const config = await files.open("config.json");
 * ```
 */
import { type CheckpointFiles, checkRelativeName } from "../io/model_source_files.ts";
import { openFileSource } from "./file_source.ts";

/** The files under directory `dir`. */
export function dirFiles(dir: string): CheckpointFiles {
  const root = dir.replace(/\/+$/, "") || "/";
  return {
    name: root,
    async open(file) {
      checkRelativeName(root, file);
      try {
        return await openFileSource(`${root}/${file}`);
      } catch (e) {
        if (e instanceof Deno.errors.NotFound) return null;
        throw e;
      }
    },
  };
}
