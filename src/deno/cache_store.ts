/**
 * A {@link CacheStore} over a directory (Deno): files are written with `writeFileAtomic`.
 *
 * @example
 * ```ts
 * import { dirCache } from "./cache_store.ts";
 * const cache = dirCache("/tmp/slimtune-cache");
 * ```
 */
import type { CacheStore } from "../io/cache_store.ts";
import { openFileSource } from "./file_source.ts";
import { writeFileAtomic } from "./fs.ts";

/** Cache files under `dir` (created on first write). */
export function dirCache(dir: string): CacheStore {
  const root = dir.replace(/\/+$/, "") || "/";
  return {
    name: root,
    async open(file) {
      try {
        return await openFileSource(`${root}/${file}`);
      } catch (e) {
        if (e instanceof Deno.errors.NotFound) return null;
        throw e;
      }
    },
    async write(file, chunks) {
      await Deno.mkdir(root, { recursive: true });
      await writeFileAtomic(`${root}/${file}`, chunks);
    },
  };
}
