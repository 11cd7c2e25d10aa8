/**
 * A {@link RunStateStore} over a folder (Deno): each key is one file, written atomically (a
 * temporary file and a rename), so a reader sees the previous state or the new one, never half.
 *
 * @example
 * ```ts
 * import { fileRunStateStore } from "./run_state_store.ts";
 * const store = fileRunStateStore(await Deno.makeTempDir());
 * await store.put("run-1", new Uint8Array([1, 2, 3]));
 * console.log(await store.get("run-1")); // Uint8Array(3) [1, 2, 3]
 * ```
 */
import { writeFileAtomic } from "./fs.ts";
import type { RunStateStore } from "../train/run_state_store.ts";

/** Keys are file names: letters, digits, `.`, `_` and `-`, not starting with a dot. */
function fileOf(dir: string, key: string): string {
  if (!/^[A-Za-z0-9_-][A-Za-z0-9._-]*$/.test(key)) {
    throw new RangeError(`run state key ${JSON.stringify(key)}: use letters, digits, . _ -`);
  }
  return `${dir}/${key}`;
}

/** The store of `dir` (created on the first put). */
export function fileRunStateStore(dir: string): RunStateStore {
  return {
    async get(key) {
      try {
        return await Deno.readFile(fileOf(dir, key));
      } catch (e) {
        if (e instanceof Deno.errors.NotFound) return null;
        throw e;
      }
    },
    async put(key, bytes) {
      const path = fileOf(dir, key);
      await Deno.mkdir(dir, { recursive: true });
      await writeFileAtomic(path, bytes);
    },
  };
}
