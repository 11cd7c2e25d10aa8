import { deepStrictEqual, match, rejects, strictEqual } from "node:assert/strict";
import { chooseCheckpoints } from "./checkpoints_choice.ts";

const MB = 2 ** 20;

Deno.test("--checkpoints auto: on disk in the cache folder with streamed weights, in memory with resident ones", async () => {
  const tmp = await Deno.makeTempDir();
  try {
    const streamed = {
      method: "mesp",
      weights: "streamed",
      cacheDir: null as string | null,
      savedBytes: 21 * MB,
    } as const;
    const env = { XDG_CACHE_HOME: tmp };
    const disk = await chooseCheckpoints("auto", streamed, env);
    strictEqual(disk.checkpoints, "disk");
    strictEqual(disk.dir, `${tmp}/slimtune`);
    match(disk.note!, /scratch file in .*slimtune, 21\.0 MB less memory.*--checkpoints memory/);
    // The probe leaves nothing behind.
    deepStrictEqual(await Array.fromAsync(Deno.readDir(tmp)), []);
    const given = await chooseCheckpoints("auto", { ...streamed, cacheDir: `${tmp}/c` });
    strictEqual(given.dir, `${tmp}/c`);
    const resident = await chooseCheckpoints(
      "auto",
      { ...streamed, weights: "resident" } as const,
      env,
    );
    strictEqual(resident.checkpoints, "memory");
    match(resident.note!, /in memory \(--checkpoints auto: resident weights; --checkpoints disk/);
    await Deno.writeTextFile(`${tmp}/file`, "x");
    const unwritable = await chooseCheckpoints("auto", streamed, {
      XDG_CACHE_HOME: `${tmp}/file`,
    });
    strictEqual(unwritable.checkpoints, "memory");
    match(unwritable.note!, /file\/slimtune is not writable/);
    await rejects(
      () => chooseCheckpoints("auto", { ...streamed, cacheDir: `${tmp}/file` } as const),
      /--cache-dir/,
    );
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("--checkpoints memory and disk stand as given; full and mezo keep none", async () => {
  const tmp = await Deno.makeTempDir();
  try {
    const o = {
      method: "lcsb",
      weights: "resident",
      cacheDir: null as string | null,
      savedBytes: MB,
    } as const;
    deepStrictEqual(await chooseCheckpoints("memory", o, { HOME: tmp }), {
      checkpoints: "memory",
      dir: null,
      note: null,
    });
    deepStrictEqual(await chooseCheckpoints("disk", o, { HOME: tmp }), {
      checkpoints: "disk",
      dir: `${tmp}/.cache/slimtune`,
      note: null,
    });
    await rejects(() => chooseCheckpoints("disk", o, {}), /--checkpoints: .*give --cache-dir DIR/);
    for (const method of ["full", "mezo"] as const) {
      const c = await chooseCheckpoints("auto", { ...o, method, weights: "streamed" }, {
        HOME: tmp,
      });
      deepStrictEqual(c, { checkpoints: "memory", dir: null, note: null });
    }
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});
