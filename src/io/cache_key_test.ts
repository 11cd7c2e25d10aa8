/**
 * The streamed weight cache is keyed by the checkpoint's bytes, not only its tensor headers: a
 * checkpoint replaced by another with identical shapes gets a new cache, and an unchanged one
 * reuses its cache.
 */
import assert from "node:assert/strict";
import { makeCheckpoint } from "../../tools/make_checkpoint.ts";
import { openModelDir } from "../deno/model_source.ts";
import { openModel as openModelPortable } from "./model_source.ts";
import { type CacheStore, MemoryCacheStore } from "./cache_store.ts";
import { dirCache } from "../deno/cache_store.ts";
import { MemorySource } from "./byte_source.ts";
import { SafetensorsFile } from "./safetensors.ts";
import { loadKernelsSync } from "../kernels/wasm.ts";
import { LINEAR_NAMES, type LinearWeight, type WeightStore } from "../model/weights.ts";
import type { Arena } from "../runtime/arena.ts";

async function withDir(f: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "slimtune-cache-key-" });
  try {
    await f(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function kernelsAndArena() {
  return loadKernelsSync({ variant: "reference" });
}

/** A cache store that counts the cache files written through it. */
function countingCache(inner: CacheStore): CacheStore & { writes: number } {
  return {
    name: inner.name,
    writes: 0,
    open: (file) => inner.open(file),
    async write(file, chunks) {
      this.writes++;
      await inner.write(file, chunks);
    },
  };
}

/** Raw bytes of a linear (q + scales + biases, or w, and its bias) copied out of the arena. */
function bytesOf(w: LinearWeight, arena: Arena): Uint8Array[] {
  const out = w.kind === "f32" ? [arena.u8(w.w, w.out * w.in * 4).slice()] : [
    arena.u8(w.q, w.out * w.in / 2).slice(),
    arena.u8(w.scales, w.out * w.in / w.groupSize * 4).slice(),
    arena.u8(w.biases, w.out * w.in / w.groupSize * 4).slice(),
  ];
  if (w.bias !== null) out.push(arena.u8(w.bias, w.out * 4).slice());
  return out;
}

/** Every weight a store serves (blocks, embedding rows, final norm, head), copied out. */
async function weightsOf(store: WeightStore, arena: Arena): Promise<Uint8Array[]> {
  const { hiddenSize: K, numLayers, vocabSize } = store.config;
  const out: Uint8Array[] = [];
  for (let i = 0; i < numLayers; i++) {
    const b = await store.acquireBlock(i);
    for (const n of LINEAR_NAMES) out.push(...bytesOf(b.linears[n], arena));
    out.push(arena.u8(b.inputNorm, K * 4).slice(), arena.u8(b.postAttentionNorm, K * 4).slice());
    store.releaseBlock(i);
  }
  const ids = [0, 1, vocabSize >> 1, vocabSize - 1];
  const m = arena.mark();
  const idp = arena.allocI32(ids.length);
  arena.i32(idp, ids.length).set(ids);
  const rows = arena.allocF32(ids.length * K);
  await store.embed(rows, idp, ids.length);
  out.push(arena.u8(rows, ids.length * K * 4).slice());
  arena.release(m);
  out.push(arena.u8(store.finalNorm, K * 4).slice());
  for await (const c of store.headChunks(64)) out.push(...bytesOf(c.weight, arena));
  return out;
}

/** The weights of a store opened by `open` with a fresh arena, after which it is closed. */
async function weightsFrom(
  open: (k: ReturnType<typeof kernelsAndArena>) => Promise<WeightStore>,
): Promise<Uint8Array[]> {
  const k = kernelsAndArena();
  const store = await open(k);
  try {
    return await weightsOf(store, k.arena);
  } finally {
    await store.close();
  }
}

/** Tensor headers (name, dtype, shape, offsets) of a safetensors file's bytes. */
async function headerOf(bytes: Uint8Array): Promise<unknown> {
  const file = await SafetensorsFile.open(new MemorySource("h", bytes));
  return [...file.header.tensors];
}

Deno.test("a local checkpoint replaced by one with the same shapes rebuilds the cache: new weights served", async () => {
  await withDir(async (dir) => {
    const model = `${dir}/model`;
    const cache = countingCache(dirCache(`${dir}/cache`));
    const streamed = (k: ReturnType<typeof kernelsAndArena>) =>
      openModelDir({
        source: model,
        quant: "int4",
        weights: "streamed",
        headChunkRows: 64,
        cache,
        ...k,
      });
    const resident = (k: ReturnType<typeof kernelsAndArena>) =>
      openModelDir({ source: model, quant: "int4", ...k });

    await makeCheckpoint({ preset: "tiny-llama", out: model, seed: 1 });
    const oldConfig = await Deno.readFile(`${model}/config.json`);
    const oldHeader = await headerOf(await Deno.readFile(`${model}/model.safetensors`));
    const oldWeights = await weightsFrom(streamed);
    assert.equal(cache.writes, 1);

    // Another fine-tune of the same base: config and every tensor header identical, data not.
    // (make_checkpoint records its seed in config.json; a fine-tune keeps the base's config.)
    await makeCheckpoint({ preset: "tiny-llama", out: model, seed: 2 });
    await Deno.writeFile(`${model}/config.json`, oldConfig);
    assert.deepEqual(
      await headerOf(await Deno.readFile(`${model}/model.safetensors`)),
      oldHeader,
    );

    const newWeights = await weightsFrom(streamed);
    assert.equal(cache.writes, 2, "the cache was rebuilt");
    assert.notDeepEqual(newWeights, oldWeights, "the old cache's weights are not served");
    assert.deepEqual(newWeights, await weightsFrom(resident), "the new checkpoint's weights");
    assert.equal([...Deno.readDirSync(`${dir}/cache`)].length, 2, "one cache file per version");
  });
});

Deno.test("an unchanged checkpoint reuses its cache file, also reached through another path", async () => {
  await withDir(async (dir) => {
    const model = `${dir}/model`;
    await makeCheckpoint({ preset: "tiny-qwen2", out: model, seed: 3 });
    const cache = countingCache(dirCache(`${dir}/cache`));
    const open = (source: string) => (k: ReturnType<typeof kernelsAndArena>) =>
      openModelDir({ source, quant: "int4", weights: "streamed", headChunkRows: 64, cache, ...k });

    const first = await weightsFrom(open(model));
    const [cacheFile] = [...Deno.readDirSync(`${dir}/cache`)].map((e) => e.name);
    const written = await Deno.readFile(`${dir}/cache/${cacheFile}`);
    const stat = await Deno.stat(`${dir}/cache/${cacheFile}`);
    await new Promise((r) => setTimeout(r, 20));

    const parent = dir.split("/").pop()!;
    for (const source of [model, `${model}/`, `${dir}/../${parent}/model`]) {
      assert.deepEqual(await weightsFrom(open(source)), first, source);
    }
    assert.equal(cache.writes, 1, "written once, then reused");
    assert.deepEqual([...Deno.readDirSync(`${dir}/cache`)].map((e) => e.name), [cacheFile]);
    const after = await Deno.stat(`${dir}/cache/${cacheFile}`);
    assert.equal(after.mtime?.getTime(), stat.mtime?.getTime());
    assert.equal(after.ino, stat.ino, "not replaced by an atomic rewrite");
    assert.deepEqual(await Deno.readFile(`${dir}/cache/${cacheFile}`), written);
  });
});

Deno.test("a few bytes changed in place in a local checkpoint rebuild the cache", async () => {
  await withDir(async (dir) => {
    const model = `${dir}/model`;
    await makeCheckpoint({ preset: "tiny-llama", out: model, seed: 4 });
    const cache = countingCache(dirCache(`${dir}/cache`));
    const streamed = (k: ReturnType<typeof kernelsAndArena>) =>
      openModelDir({
        source: model,
        quant: "int4",
        weights: "streamed",
        headChunkRows: 64,
        cache,
        ...k,
      });
    const before = await weightsFrom(streamed);

    // Overwrite 16 bytes in the middle of the tensor data (same file, same size, same inode).
    const path = `${model}/model.safetensors`;
    const { size, mtime } = await Deno.stat(path);
    const file = await Deno.open(path, { write: true });
    await file.seek(Math.floor(size / 2), Deno.SeekMode.Start);
    await file.write(new Uint8Array(16).fill(0x3c));
    file.close();
    // Millisecond mtimes of the two writes could coincide in a fast test; real edits are apart.
    await Deno.utime(path, new Date(), new Date(mtime!.getTime() + 2000));

    const after = await weightsFrom(streamed);
    assert.equal(cache.writes, 2);
    assert.notDeepEqual(after, before);
    assert.deepEqual(
      after,
      await weightsFrom((k) => openModelDir({ source: model, quant: "int4", ...k })),
    );
  });
});

Deno.test("portable sources: bytes in memory and HTTP (ETag) are keyed by content, sharded too", async () => {
  await withDir(async (dir) => {
    // Two versions of a sharded checkpoint with identical config and headers.
    const versions: Record<string, Uint8Array<ArrayBuffer>>[] = [];
    for (const seed of [5, 6]) {
      const d = `${dir}/v${seed}`;
      await makeCheckpoint({ preset: "tiny-qwen2", out: d, seed, shardMb: 0.1 });
      const files: Record<string, Uint8Array<ArrayBuffer>> = {};
      for (const e of Deno.readDirSync(d)) files[e.name] = await Deno.readFile(`${d}/${e.name}`);
      versions.push(files);
    }
    const shards = Object.keys(versions[0]).filter((n) => /^model-\d+-of-\d+/.test(n)).sort();
    assert.ok(shards.length >= 2, "sharded");
    for (const s of shards) {
      assert.deepEqual(await headerOf(versions[1][s]), await headerOf(versions[0][s]));
    }
    // v1 differs from v0 in the LAST shard only, so every shard's identity counts.
    const last = shards.at(-1)!;
    const mixed = { ...versions[0], [last]: versions[1][last] };
    const reference = (files: Record<string, Uint8Array>) =>
      weightsFrom((k) => openModelPortable({ source: files, quant: "int4", ...k }));

    // In memory: no identity of their own, so the bytes are hashed (small files: whole).
    const memCache = countingCache(new MemoryCacheStore());
    const fromMemory = (files: Record<string, Uint8Array>) =>
      weightsFrom((k) =>
        openModelPortable({
          source: files,
          quant: "int4",
          weights: "streamed",
          headChunkRows: 64,
          cache: memCache,
          ...k,
        })
      );
    const v0 = await fromMemory(versions[0]);
    assert.deepEqual(await fromMemory({ ...versions[0] }), v0);
    assert.equal(memCache.writes, 1, "same bytes: reused");
    const m = await fromMemory(mixed);
    assert.equal(memCache.writes, 2, "one shard changed: rebuilt");
    assert.notDeepEqual(m, v0);
    assert.deepEqual(m, await reference(mixed));

    // Over HTTP: the server's ETag names the version; the cache follows it.
    let served = versions[0];
    let etag = '"v0"';
    const ac = new AbortController();
    const server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen() {} },
      (req) => {
        const name = new URL(req.url).pathname.split("/").pop()!;
        const body = served[name];
        if (!body) return new Response("missing", { status: 404 });
        const r = /^bytes=(\d+)-(\d+)$/.exec(req.headers.get("Range") ?? "");
        if (!r) return new Response(body, { headers: { ETag: etag } });
        const a = Number(r[1]), b = Math.min(Number(r[2]), body.length - 1);
        return new Response(body.slice(a, b + 1), {
          status: 206,
          headers: { "Content-Range": `bytes ${a}-${b}/${body.length}`, ETag: etag },
        });
      },
    );
    try {
      const url = new URL(`http://127.0.0.1:${server.addr.port}/repo/`);
      const httpCache = countingCache(new MemoryCacheStore());
      const fromHttp = () =>
        weightsFrom((k) =>
          openModelPortable({
            source: url,
            quant: "int4",
            weights: "streamed",
            headChunkRows: 64,
            cache: httpCache,
            ...k,
          })
        );
      assert.deepEqual(await fromHttp(), v0);
      assert.deepEqual(await fromHttp(), v0);
      assert.equal(httpCache.writes, 1, "same ETag: reused");
      served = mixed;
      etag = '"v1"';
      assert.deepEqual(await fromHttp(), m);
      assert.equal(httpCache.writes, 2, "new ETag: rebuilt");
    } finally {
      ac.abort();
      await server.finished;
    }
  });
});

Deno.test("a checkpoint changed in place while its cache is being built is refused, then rebuilt on the next open", async () => {
  await withDir(async (dir) => {
    const model = `${dir}/model`;
    await makeCheckpoint({ preset: "tiny-llama", out: model, seed: 4 });
    const inner = dirCache(`${dir}/cache`);
    let tamper = true;
    const cache: CacheStore = {
      name: inner.name,
      open: (file) => inner.open(file),
      async write(file, chunks) {
        if (tamper) {
          // Someone rewrites bytes near the end of the weights, in place (same inode).
          tamper = false;
          const f = await Deno.open(`${model}/model.safetensors`, { write: true });
          const { size } = await f.stat();
          await f.seek(size - 64, Deno.SeekMode.Start);
          await f.write(new Uint8Array(32).fill(7));
          f.close();
          await Deno.utime(`${model}/model.safetensors`, 1e9, 1e9);
        }
        await inner.write(file, chunks);
      },
    };
    const streamed = (k: ReturnType<typeof kernelsAndArena>) =>
      openModelDir({
        source: model,
        quant: "int4",
        weights: "streamed",
        headChunkRows: 64,
        cache,
        ...k,
      });
    await assert.rejects(
      streamed(kernelsAndArena()),
      /model: the checkpoint changed while its weight cache was being built/,
    );
    const served = await weightsFrom(streamed);
    const resident = await weightsFrom((k) => openModelDir({ source: model, quant: "int4", ...k }));
    assert.deepEqual(served, resident, "the next open serves the checkpoint as it is now");
  });
});
