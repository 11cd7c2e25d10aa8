import { strictEqual } from "node:assert/strict";
import { userCacheDir } from "./cache_dir.ts";

Deno.test("userCacheDir: SLIMTUNE_CACHE_DIR, then XDG_CACHE_HOME, then HOME", () => {
  strictEqual(userCacheDir({ SLIMTUNE_CACHE_DIR: "/c", XDG_CACHE_HOME: "/x", HOME: "/h" }), "/c");
  strictEqual(userCacheDir({ XDG_CACHE_HOME: "/x", HOME: "/h" }), "/x/slimtune");
  strictEqual(userCacheDir({ HOME: "/h" }), "/h/.cache/slimtune");
  strictEqual(userCacheDir({}), null);
});
