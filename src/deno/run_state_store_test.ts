import { deepStrictEqual, rejects, strictEqual } from "node:assert/strict";
import { fileRunStateStore } from "./run_state_store.ts";

Deno.test("fileRunStateStore: a key is one file, replaced whole; absent keys are null", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const store = fileRunStateStore(`${dir}/state`);
    strictEqual(await store.get("run-1"), null);
    await store.put("run-1", Uint8Array.of(1, 2, 3));
    await store.put("run-1", Uint8Array.of(4, 5));
    deepStrictEqual(await store.get("run-1"), Uint8Array.of(4, 5));
    deepStrictEqual(await Deno.readFile(`${dir}/state/run-1`), Uint8Array.of(4, 5));
    // Only the state file: no temporary file is left beside it.
    deepStrictEqual([...Deno.readDirSync(`${dir}/state`)].map((e) => e.name), ["run-1"]);
    await rejects(store.put("../escape", Uint8Array.of(1)), /run state key "..\/escape"/);
    await rejects(store.get(".hidden"), /run state key/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
