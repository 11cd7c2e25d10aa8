import assert from "node:assert/strict";
import { writeFileAtomic } from "./fs.ts";

async function* threeChunks() {
  yield new Uint8Array([9]);
  yield new Uint8Array(0);
  yield new Uint8Array([8]);
}

async function* failing() {
  yield new Uint8Array([2, 2, 2]);
  throw new Error("source broke");
}

Deno.test("writeFileAtomic writes buffers, sync and async chunk streams", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const p = `${dir}/x.bin`;
    await writeFileAtomic(p, new Uint8Array([1, 2, 3]));
    assert.deepEqual(await Deno.readFile(p), new Uint8Array([1, 2, 3]));
    await writeFileAtomic(p, [new Uint8Array([4]), new Uint8Array([5, 6])]);
    assert.deepEqual(await Deno.readFile(p), new Uint8Array([4, 5, 6]));
    await writeFileAtomic(p, threeChunks());
    assert.deepEqual(await Deno.readFile(p), new Uint8Array([9, 8]));
    const names = [...Deno.readDirSync(dir)].map((e) => e.name);
    assert.deepEqual(names, ["x.bin"], "no temporary files left behind");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("writeFileAtomic leaves the old file intact when the data source fails", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const p = `${dir}/keep.bin`;
    await writeFileAtomic(p, new Uint8Array([1, 1]));
    await assert.rejects(() => writeFileAtomic(p, failing()), /source broke/);
    assert.deepEqual(await Deno.readFile(p), new Uint8Array([1, 1]));
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["keep.bin"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
