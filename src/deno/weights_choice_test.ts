import { deepStrictEqual, match, rejects, strictEqual } from "node:assert/strict";
import { chooseWeights } from "./weights_choice.ts";

Deno.test("--weights auto streams into a writable cache folder and says so", async () => {
  const tmp = await Deno.makeTempDir();
  try {
    const c = await chooseWeights("auto", null, { XDG_CACHE_HOME: tmp });
    strictEqual(c.weights, "streamed");
    strictEqual(c.cacheDir, `${tmp}/slimtune`);
    match(c.note!, /streamed .* int4 cache in .*--weights resident/);
    // The probe leaves nothing behind, not even the folder it would create.
    deepStrictEqual(await Array.fromAsync(Deno.readDir(tmp)), []);
    strictEqual((await chooseWeights("auto", `${tmp}/c`, {})).cacheDir, `${tmp}/c`);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("--weights auto is resident without a writable cache folder; explicit choices stand", async () => {
  const tmp = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${tmp}/file`, "x");
    const c = await chooseWeights("auto", null, { XDG_CACHE_HOME: `${tmp}/file` });
    strictEqual(c.weights, "resident");
    match(c.note!, /resident.*not writable.*--cache-dir/);
    strictEqual((await chooseWeights("auto", null, {})).weights, "resident");
    deepStrictEqual(await chooseWeights("streamed", null, {}), {
      weights: "streamed",
      cacheDir: null,
      note: null,
    });
    await rejects(() => chooseWeights("auto", `${tmp}/file`, {}), /--cache-dir/);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});
