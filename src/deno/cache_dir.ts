/**
 * The user's cache folder, where both command lines keep what they derive from a model (the int4
 * weight cache, the tokenizer snapshot): `$SLIMTUNE_CACHE_DIR`, else `$XDG_CACHE_HOME/slimtune`,
 * else `~/.cache/slimtune`. Never the model's folder, which the user did not name as an output.
 *
 * @example
 * ```ts
 * import { userCacheDir } from "./cache_dir.ts";
 * console.log(userCacheDir({ HOME: "/home/a" })); // "/home/a/.cache/slimtune"
 * ```
 */

/** The default cache folder for `env` (an environment), or null when none can be named. */
export function userCacheDir(env: Record<string, string | undefined>): string | null {
  if (env.SLIMTUNE_CACHE_DIR) return env.SLIMTUNE_CACHE_DIR;
  if (env.XDG_CACHE_HOME) return `${env.XDG_CACHE_HOME}/slimtune`;
  if (env.HOME) return `${env.HOME}/.cache/slimtune`;
  return null;
}

/** The default cache folder of this process's environment (see {@link userCacheDir}). */
export function defaultCacheDir(): string | null {
  return userCacheDir(environment());
}

/** The cache-folder variables of this process (none without --allow-env). */
export function environment(): Record<string, string | undefined> {
  const get = (k: string) => {
    try {
      return Deno.env.get(k);
    } catch {
      return undefined; // no --allow-env: no default cache folder
    }
  };
  return {
    SLIMTUNE_CACHE_DIR: get("SLIMTUNE_CACHE_DIR"),
    XDG_CACHE_HOME: get("XDG_CACHE_HOME"),
    HOME: get("HOME"),
  };
}
