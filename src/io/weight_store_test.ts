import assert from "node:assert/strict";
import { makeCheckpoint } from "../../tools/make_checkpoint.ts";
import { openModelDir } from "../deno/model_source.ts";
import { openModel as openModelPortable } from "./model_source.ts";
import { MemoryCacheStore } from "./cache_store.ts";
import { loadKernelsSync } from "../kernels/wasm.ts";
import type { LinearWeight, WeightStore } from "../model/weights.ts";
import { LINEAR_NAMES } from "../model/weights.ts";
import type { Arena } from "../runtime/arena.ts";
import type { Kernels } from "../kernels/abi.ts";
import { SafetensorsFile } from "./safetensors.ts";
import { MemorySource } from "./byte_source.ts";
import { SafetensorsError } from "./safetensors.ts";

/** bf16 -> f32 written independently of src/io/dtype.ts. */
function bf16(bytes: Uint8Array): Float32Array {
  const out = new Float32Array(bytes.length / 2);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const tmp = new DataView(new ArrayBuffer(4));
  for (let i = 0; i < out.length; i++) {
    tmp.setUint32(0, dv.getUint16(2 * i, true) << 16);
    out[i] = tmp.getFloat32(0);
  }
  return out;
}

async function withDir(f: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "slimtune-io-" });
  try {
    await f(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** The source tensor `name` of a single-file checkpoint in `dir`, as f32. */
async function sourceTensor(dir: string, name: string): Promise<Float32Array> {
  const bytes = await Deno.readFile(`${dir}/model.safetensors`);
  const file = await SafetensorsFile.open(new MemorySource("m", bytes));
  return bf16(await file.read(name));
}

function kernelsAndArena() {
  return loadKernelsSync({ variant: "reference" });
}

/** The weights of a linear as f32 (dequantized when int4), copied out of the arena. */
function denseOf(w: LinearWeight, kernels: Kernels, arena: Arena): Float32Array {
  if (w.kind === "f32") return arena.f32(w.w, w.out * w.in).slice();
  const m = arena.mark();
  const out = arena.allocF32(w.out * w.in);
  kernels.int4Dequantize(out, w.q, w.scales, w.biases, w.out, w.in, w.groupSize);
  const v = arena.f32(out, w.out * w.in).slice();
  arena.release(m);
  return v;
}

/** Raw bytes of a linear (q + scales + biases, or w) copied out of the arena. */
function bytesOf(w: LinearWeight, arena: Arena): Uint8Array[] {
  if (w.kind === "f32") return [arena.u8(w.w, w.out * w.in * 4).slice()];
  const g = w.in / w.groupSize;
  return [
    arena.u8(w.q, w.out * w.in / 2).slice(),
    arena.u8(w.scales, w.out * g * 4).slice(),
    arena.u8(w.biases, w.out * g * 4).slice(),
  ];
}

async function embedRows(store: WeightStore, arena: Arena, ids: number[]): Promise<Float32Array> {
  const K = store.config.hiddenSize;
  const m = arena.mark();
  const idp = arena.allocI32(ids.length);
  arena.i32(idp, ids.length).set(ids);
  const out = arena.allocF32(ids.length * K);
  await store.embed(out, idp, ids.length);
  const v = arena.f32(out, ids.length * K).slice();
  arena.release(m);
  return v;
}

Deno.test("quant none: resident weights are exactly the checkpoint's values", async () => {
  await withDir(async (dir) => {
    await makeCheckpoint({ preset: "tiny-qwen2", out: dir, seed: 7 });
    const { kernels, arena } = kernelsAndArena();
    const store = await openModelDir({ source: dir, quant: "none", kernels, arena });
    assert.equal(store.config.numLayers, 2);
    const b = await store.acquireBlock(1);
    const up = b.linears.up;
    assert.equal(up.kind, "f32");
    assert.deepEqual([up.out, up.in], [128, 64]);
    assert.deepEqual(
      denseOf(up, kernels, arena),
      await sourceTensor(dir, "model.layers.1.mlp.up_proj.weight"),
    );
    assert.deepEqual(
      denseOf(b.linears.k, kernels, arena),
      await sourceTensor(dir, "model.layers.1.self_attn.k_proj.weight"),
    );
    assert.deepEqual(
      arena.f32(b.linears.v.bias!, 32),
      await sourceTensor(dir, "model.layers.1.self_attn.v_proj.bias"),
    );
    assert.equal(b.linears.o.bias, null, "Qwen2 has no o_proj bias");
    assert.deepEqual([...arena.f32(b.inputNorm, 64)], new Array(64).fill(1));
    store.releaseBlock(1);
    const table = await sourceTensor(dir, "model.embed_tokens.weight");
    const rows = await embedRows(store, arena, [5, 0, 511, 5]);
    for (const [t, id] of [5, 0, 511, 5].entries()) {
      assert.deepEqual(rows.subarray(t * 64, t * 64 + 64), table.subarray(id * 64, id * 64 + 64));
    }
    await store.close();
  });
});

Deno.test("quant int4: float checkpoints quantized in row chunks match one whole-tensor quantize", async () => {
  await withDir(async (dir) => {
    await makeCheckpoint({ preset: "tiny-qwen2", out: dir, seed: 3 });
    const { kernels, arena } = kernelsAndArena();
    // A tiny scratch forces many row chunks per tensor.
    const store = await openModelDir({
      source: dir,
      quant: "int4",
      kernels,
      arena,
      scratchBytes: 1000,
    });
    const b = await store.acquireBlock(0);
    const down = b.linears.down;
    assert.equal(down.kind, "int4");
    if (down.kind !== "int4") return;
    assert.deepEqual([down.out, down.in, down.groupSize], [64, 128, 64]);
    // Quantize the whole source tensor at once, independently of the loader.
    const src = await sourceTensor(dir, "model.layers.0.mlp.down_proj.weight");
    const m = arena.mark();
    const w = arena.allocF32(src.length);
    arena.f32(w, src.length).set(src);
    const q = arena.alloc(64 * 64), s = arena.allocF32(64 * 2), bb = arena.allocF32(64 * 2);
    kernels.int4Quantize(q, s, bb, w, 64, 128, 64);
    assert.deepEqual(bytesOf(down, arena), [
      arena.u8(q, 64 * 64).slice(),
      arena.u8(s, 512).slice(),
      arena.u8(bb, 512).slice(),
    ]);
    arena.release(m);
    // And the dequantized weights are within half a step of the source.
    const deq = denseOf(down, kernels, arena);
    const scales = arena.f32(down.scales, 128);
    for (let i = 0; i < src.length; i++) {
      const step = scales[Math.floor(i / 64)];
      assert.ok(Math.abs(deq[i] - src[i]) <= step / 2 + 1e-7, `element ${i}`);
    }
    // Norms and biases stay f32.
    assert.deepEqual(
      arena.f32(b.linears.q.bias!, 64),
      await sourceTensor(dir, "model.layers.0.self_attn.q_proj.bias"),
    );
    await store.close();
  });
});

async function assertSameStores(a: WeightStore, b: WeightStore, arenaA: Arena, arenaB: Arena) {
  for (let i = 0; i < a.config.numLayers; i++) {
    const wa = await a.acquireBlock(i);
    const wb = await b.acquireBlock(i);
    for (const n of LINEAR_NAMES) {
      assert.deepEqual(
        bytesOf(wb.linears[n], arenaB),
        bytesOf(wa.linears[n], arenaA),
        `block ${i} ${n}`,
      );
      const ba = wa.linears[n].bias, bb = wb.linears[n].bias;
      assert.equal(ba === null, bb === null);
      if (ba !== null && bb !== null) {
        assert.deepEqual(arenaB.f32(bb, wb.linears[n].out), arenaA.f32(ba, wa.linears[n].out));
      }
    }
    assert.deepEqual(
      arenaB.f32(wb.postAttentionNorm, a.config.hiddenSize),
      arenaA.f32(wa.postAttentionNorm, a.config.hiddenSize),
    );
    assert.equal(wa.sandwichNorms === null, wb.sandwichNorms === null);
    if (wa.sandwichNorms && wb.sandwichNorms) {
      const D = a.config.hiddenSize;
      assert.deepEqual(
        arenaB.f32(wb.sandwichNorms.attnOut, D),
        arenaA.f32(wa.sandwichNorms.attnOut, D),
      );
      assert.deepEqual(
        arenaB.f32(wb.sandwichNorms.mlpOut, D),
        arenaA.f32(wa.sandwichNorms.mlpOut, D),
      );
    }
    assert.equal(wa.qkNorm === null, wb.qkNorm === null);
    if (wa.qkNorm && wb.qkNorm) {
      const hd = a.config.headDim;
      assert.deepEqual(arenaB.f32(wb.qkNorm.q, hd), arenaA.f32(wa.qkNorm.q, hd));
      assert.deepEqual(arenaB.f32(wb.qkNorm.k, hd), arenaA.f32(wa.qkNorm.k, hd));
    }
    a.releaseBlock(i);
    b.releaseBlock(i);
  }
  const ids = [0, 1, 100, 511, 257];
  assert.deepEqual(await embedRows(b, arenaB, ids), await embedRows(a, arenaA, ids));
  assert.deepEqual(
    arenaB.f32(b.finalNorm, a.config.hiddenSize),
    arenaA.f32(a.finalNorm, a.config.hiddenSize),
  );
  // Head chunks: same rows, both covering the vocabulary once.
  const chunksA: { v0: number; bytes: Uint8Array[] }[] = [];
  for await (const c of a.headChunks(48)) {
    chunksA.push({ v0: c.v0, bytes: bytesOf(c.weight, arenaA) });
  }
  let i = 0, next = 0;
  for await (const c of b.headChunks(48)) {
    assert.equal(c.v0, next);
    assert.ok(c.weight.out <= 48);
    next += c.weight.out;
    assert.equal(c.v0, chunksA[i].v0);
    assert.deepEqual(bytesOf(c.weight, arenaB), chunksA[i++].bytes);
  }
  assert.equal(next, a.config.vocabSize);
  assert.equal(i, chunksA.length);
}

Deno.test("streamed store serves the same weights as resident (int4 and f32, tied and untied)", async () => {
  for (
    const [preset, quant] of [["tiny-qwen2", "int4"], ["tiny-llama", "int4"], [
      "tiny-llama",
      "none",
    ]] as const
  ) {
    await withDir(async (dir) => {
      await makeCheckpoint({ preset, out: dir, seed: 11, dtype: "f16" });
      const r = kernelsAndArena();
      const s = kernelsAndArena();
      const resident = await openModelDir({
        source: dir,
        quant,
        kernels: r.kernels,
        arena: r.arena,
      });
      const streamed = await openModelDir({
        source: dir,
        quant,
        weights: "streamed",
        kernels: s.kernels,
        arena: s.arena,
        headChunkRows: 64,
        cacheDir: `${dir}/cache`,
      });
      assert.equal(streamed.config.tieWordEmbeddings, preset === "tiny-qwen2");
      await assertSameStores(resident, streamed, r.arena, s.arena);
      await resident.close();
      await streamed.close();
    });
  }
});

Deno.test("Qwen3: q_norm / k_norm load at their values (resident f32, streamed int4); a missing one is named", async () => {
  await withDir(async (dir) => {
    await makeCheckpoint({ preset: "tiny-qwen3", out: dir, seed: 4, dtype: "f32" });
    const path = `${dir}/model.safetensors`;
    const file = await SafetensorsFile.open(new MemorySource(path, await Deno.readFile(path)));
    const { serializeSafetensors } = await import("./safetensors_writer.ts");
    // Distinct values per tensor (the preset writes ones), so a swapped or shifted load shows.
    const normValues = (name: string) =>
      Float32Array.from(
        { length: 32 },
        (_, j) => 1 + (name.includes("k_norm") ? -1 : 1) * (j + 1) / 64 + Number(name[13]) / 8,
      );
    const rewrite = async (keep: (name: string) => boolean) => {
      const tensors = [];
      for (const name of file.names()) {
        if (!keep(name)) continue;
        const info = file.info(name);
        const data = /_norm\.weight$/.test(name) && name.includes("self_attn")
          ? new Uint8Array(normValues(name).buffer)
          : await file.read(name);
        tensors.push({ name, dtype: info.dtype, shape: info.shape, data });
      }
      await Deno.writeFile(path, serializeSafetensors(tensors));
    };
    await rewrite(() => true);
    assert.deepEqual(file.info("model.layers.0.self_attn.q_norm.weight").shape, [32]);
    assert.deepEqual(file.info("model.layers.0.self_attn.q_proj.weight").shape, [128, 64]);
    assert.deepEqual(file.info("model.layers.0.self_attn.o_proj.weight").shape, [64, 128]);
    assert.ok(!file.has("model.layers.0.self_attn.q_proj.bias"), "qwen3: no biases");
    const r = kernelsAndArena();
    const resident = await openModelDir({ source: dir, quant: "none", ...r });
    assert.equal(resident.config.headDim, 32);
    for (let i = 0; i < 2; i++) {
      const b = await resident.acquireBlock(i);
      assert.equal(b.linears.q.bias, null);
      assert.deepEqual(
        r.arena.f32(b.qkNorm!.q, 32),
        normValues(`model.layers.${i}.self_attn.q_norm.weight`),
      );
      assert.deepEqual(
        r.arena.f32(b.qkNorm!.k, 32),
        normValues(`model.layers.${i}.self_attn.k_norm.weight`),
      );
      resident.releaseBlock(i);
    }
    await resident.close();
    const r4 = kernelsAndArena();
    const s = kernelsAndArena();
    const resident4 = await openModelDir({ source: dir, quant: "int4", ...r4 });
    const streamed = await openModelDir({
      source: dir,
      quant: "int4",
      weights: "streamed",
      ...s,
      headChunkRows: 64,
      cacheDir: `${dir}/cache`,
    });
    await assertSameStores(resident4, streamed, r4.arena, s.arena);
    await resident4.close();
    await streamed.close();

    await rewrite((n) => n !== "model.layers.1.self_attn.k_norm.weight");
    const err = await openModelDir({ source: dir, quant: "int4", ...kernelsAndArena() }).then(
      () => null,
      (e) => e,
    );
    assert.ok(err instanceof SafetensorsError);
    assert.equal(err.message, `${path}: missing tensor model.layers.1.self_attn.k_norm.weight`);
  });
});

Deno.test("Gemma 3: every norm weight loads as 1 + w (block, head and final norms; resident f32 = streamed int4); the four block norms by their HF names", async () => {
  await withDir(async (dir) => {
    await makeCheckpoint({ preset: "tiny-gemma3", out: dir, seed: 4, dtype: "f32" });
    const path = `${dir}/model.safetensors`;
    const file = await SafetensorsFile.open(new MemorySource(path, await Deno.readFile(path)));
    const { serializeSafetensors } = await import("./safetensors_writer.ts");
    // Distinct zero-centred values per norm tensor, so a swapped, shifted or un-offset load shows.
    const names = file.names().filter((n) => /norm\.weight$/.test(n));
    const values = new Map(names.map((name, t) => {
      const n = file.info(name).shape[0];
      return [name, Float32Array.from({ length: n }, (_, j) => ((t * 7 + j) % 23 - 11) / 37)];
    }));
    const tensors = [];
    for (const name of file.names()) {
      const info = file.info(name);
      const v = values.get(name);
      const data = v ? new Uint8Array(v.buffer) : await file.read(name);
      tensors.push({ name, dtype: info.dtype, shape: info.shape, data });
    }
    await Deno.writeFile(path, serializeSafetensors(tensors));
    const plusOne = (name: string) => Float32Array.from(values.get(name)!, (w) => 1 + w);
    const r = kernelsAndArena();
    const resident = await openModelDir({ source: dir, quant: "none", ...r });
    assert.equal(resident.config.architecture, "gemma3");
    const D = 64, hd = 32;
    assert.deepEqual(r.arena.f32(resident.finalNorm, D), plusOne("model.norm.weight"));
    for (let i = 0; i < 3; i++) {
      const p = `model.layers.${i}`;
      const b = await resident.acquireBlock(i);
      assert.equal(b.index, i);
      assert.deepEqual(r.arena.f32(b.inputNorm, D), plusOne(`${p}.input_layernorm.weight`));
      assert.deepEqual(
        r.arena.f32(b.postAttentionNorm, D),
        plusOne(`${p}.pre_feedforward_layernorm.weight`),
      );
      assert.deepEqual(
        r.arena.f32(b.sandwichNorms!.attnOut, D),
        plusOne(`${p}.post_attention_layernorm.weight`),
      );
      assert.deepEqual(
        r.arena.f32(b.sandwichNorms!.mlpOut, D),
        plusOne(`${p}.post_feedforward_layernorm.weight`),
      );
      assert.deepEqual(r.arena.f32(b.qkNorm!.q, hd), plusOne(`${p}.self_attn.q_norm.weight`));
      assert.deepEqual(r.arena.f32(b.qkNorm!.k, hd), plusOne(`${p}.self_attn.k_norm.weight`));
      resident.releaseBlock(i);
    }
    await resident.close();
    const r4 = kernelsAndArena();
    const s = kernelsAndArena();
    const resident4 = await openModelDir({ source: dir, quant: "int4", ...r4 });
    const streamed = await openModelDir({
      source: dir,
      quant: "int4",
      weights: "streamed",
      ...s,
      headChunkRows: 64,
      cacheDir: `${dir}/cache`,
    });
    await assertSameStores(resident4, streamed, r4.arena, s.arena);
    assert.deepEqual(s.arena.f32(streamed.finalNorm, D), plusOne("model.norm.weight"));
    await resident4.close();
    await streamed.close();
  });
});

Deno.test("streamed store: one block at a time, no arena growth after open, cache reused and keyed", async () => {
  await withDir(async (dir) => {
    await makeCheckpoint({ preset: "tiny-llama", out: dir, seed: 1 });
    const { kernels, arena } = kernelsAndArena();
    const store = await openModelDir({
      source: dir,
      quant: "int4",
      weights: "streamed",
      kernels,
      arena,
    });
    const cacheFiles = () =>
      [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) =>
        n.startsWith("slimtune-weights-")
      );
    assert.equal(cacheFiles().length, 1, "cache written next to the checkpoint");
    const high = arena.highWater;
    const used = arena.used;
    const grows = arena.grows;
    await store.acquireBlock(0);
    await assert.rejects(() => store.acquireBlock(1), /block 0 is still held/);
    store.releaseBlock(0);
    assert.throws(() => store.releaseBlock(0), /not held/);
    for (let i = 0; i < 2; i++) {
      await store.acquireBlock(i);
      store.releaseBlock(i);
    }
    for await (const _ of store.headChunks(100)) { /* read all */ }
    assert.equal(arena.highWater, high, "acquire and head chunks allocate nothing");
    assert.equal(arena.used, used);
    assert.equal(arena.grows, grows);
    await store.close();

    // Re-opening reuses the cache file (no rewrite).
    const name = cacheFiles()[0];
    const before = (await Deno.stat(`${dir}/${name}`)).mtime?.getTime();
    await new Promise((r) => setTimeout(r, 20));
    const again = await openModelDir({
      source: dir,
      quant: "int4",
      weights: "streamed",
      ...kernelsAndArena(),
    });
    await again.close();
    assert.equal((await Deno.stat(`${dir}/${name}`)).mtime?.getTime(), before);

    // A changed checkpoint (different shapes) gets a new cache, never the stale one.
    await makeCheckpoint({ preset: "tiny-llama", out: dir, seed: 1, layers: 3 });
    const changed = await openModelDir({
      source: dir,
      quant: "int4",
      weights: "streamed",
      ...kernelsAndArena(),
    });
    assert.equal(changed.config.numLayers, 3);
    await changed.acquireBlock(2);
    changed.releaseBlock(2);
    await changed.close();
    assert.equal(cacheFiles().length, 2);

    // A damaged cache file is rebuilt rather than served. (The 3-layer checkpoint's cache: the
    // key follows the checkpoint files' identity, so a rewritten checkpoint gets a new name.)
    const file = `${dir}/${cacheFiles().find((n) => n !== name)}`;
    const bytes = await Deno.readFile(file);
    await Deno.writeFile(file, bytes.subarray(0, bytes.length - 1));
    const rebuilt = await openModelDir({
      source: dir,
      quant: "int4",
      weights: "streamed",
      ...kernelsAndArena(),
    });
    await rebuilt.close();
    assert.equal((await Deno.stat(file)).size, bytes.length);
  });
});

Deno.test("arena high-water: streamed does not grow with layers, resident does", async () => {
  // tiny-qwen2 block in int4 g64 (each region 64-byte aligned): q 64x64 and o 64x64: 2048 + 2*256;
  // k, v 32x64: 1024 + 2*128; gate, up 128x64 and down 64x128: 4096 + 2*512; q/k/v biases
  // 256 + 128 + 128; two norms 256 each.
  const blockBytes = 2 * 2560 + 2 * 1280 + 3 * 5120 + 512 + 512;
  await withDir(async (dir) => {
    const used: Record<string, number> = {};
    const high: Record<string, number> = {};
    for (const layers of [2, 6]) {
      const d = `${dir}/l${layers}`;
      await makeCheckpoint({ preset: "tiny-qwen2", out: d, layers });
      for (const weights of ["resident", "streamed"] as const) {
        const { kernels, arena } = kernelsAndArena();
        const store = await openModelDir({
          source: d,
          quant: "int4",
          weights,
          kernels,
          arena,
          headChunkRows: 64,
          scratchBytes: 4096,
        });
        for (let i = 0; i < layers; i++) {
          await store.acquireBlock(i);
          store.releaseBlock(i);
        }
        for await (const _ of store.headChunks(64)) { /* read all */ }
        used[`${weights}${layers}`] = arena.used;
        high[`${weights}${layers}`] = arena.highWater;
        await store.close();
      }
    }
    assert.equal(used.resident6 - used.resident2, 4 * blockBytes);
    assert.ok(high.resident6 >= high.resident2 + 4 * blockBytes, JSON.stringify(high));
    assert.equal(used.streamed6, used.streamed2);
    assert.equal(high.streamed6, high.streamed2);
    assert.ok(high.streamed2 < high.resident2, JSON.stringify(high));
  });
});

Deno.test("portable sources: in-memory files, Blob map, and an HTTP server with Range", async () => {
  await withDir(async (dir) => {
    await makeCheckpoint({ preset: "tiny-qwen2", out: dir, seed: 5, shardMb: 0.1 });
    const names = [...Deno.readDirSync(dir)].map((e) => e.name);
    assert.ok(names.includes("model.safetensors.index.json"), "sharded");
    assert.ok(names.filter((n) => /^model-\d{5}-of-\d{5}\.safetensors$/.test(n)).length >= 2);
    const files: Record<string, Uint8Array<ArrayBuffer>> = {};
    for (const n of names) files[n] = await Deno.readFile(`${dir}/${n}`);
    const blobs: Record<string, Blob> = {};
    for (const n of names) blobs[n] = new Blob([files[n]]);

    const ac = new AbortController();
    const server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen() {} },
      (req) => {
        const name = new URL(req.url).pathname.split("/").pop()!;
        const body = files[name];
        if (!body) return new Response("missing", { status: 404 });
        const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.get("Range") ?? "");
        if (!m) return new Response(body);
        const a = Number(m[1]), b = Math.min(Number(m[2]), body.length - 1);
        return new Response(body.slice(a, b + 1), {
          status: 206,
          headers: { "Content-Range": `bytes ${a}-${b}/${body.length}` },
        });
      },
    );
    try {
      const ref = kernelsAndArena();
      const reference = await openModelDir({ source: dir, quant: "int4", ...ref });
      const sources = [files, blobs, new URL(`http://127.0.0.1:${server.addr.port}/repo/`)];
      for (const source of sources) {
        const k = kernelsAndArena();
        const store = await openModelPortable({
          source,
          quant: "int4",
          weights: "streamed",
          cache: new MemoryCacheStore(),
          headChunkRows: 64,
          ...k,
        });
        assert.ok(store.jsBytesHeld() > 0, "a memory cache is reported as JS bytes");
        await assertSameStores(reference, store, ref.arena, k.arena);
        await store.close();
      }
      await reference.close();
    } finally {
      ac.abort();
      await server.finished;
    }
  });
});

Deno.test("missing and misshapen tensors are named with their file", async () => {
  await withDir(async (dir) => {
    await makeCheckpoint({ preset: "tiny-qwen2", out: dir });
    const path = `${dir}/model.safetensors`;
    const file = await SafetensorsFile.open(new MemorySource(path, await Deno.readFile(path)));
    const { serializeSafetensors } = await import("./safetensors_writer.ts");
    const rewrite = async (edit: (name: string, shape: number[]) => number[] | null) => {
      const tensors = [];
      for (const name of file.names()) {
        const info = file.info(name);
        const shape = edit(name, info.shape);
        if (!shape) continue;
        const data = shape === info.shape
          ? await file.read(name)
          : new Uint8Array(shape.reduce((a, b) => a * b, 1) * 2);
        tensors.push({ name, dtype: info.dtype, shape, data });
      }
      await Deno.writeFile(path, serializeSafetensors(tensors));
    };
    await rewrite((n, s) => n === "model.layers.1.mlp.up_proj.weight" ? null : s);
    const k = kernelsAndArena();
    const err = await openModelDir({ source: dir, quant: "int4", ...k }).then(() => null, (e) => e);
    assert.ok(err instanceof SafetensorsError);
    assert.equal(err.message, `${path}: missing tensor model.layers.1.mlp.up_proj.weight`);

    await rewrite((n, s) =>
      n === "model.layers.1.mlp.up_proj.weight"
        ? null
        : n === "model.layers.0.mlp.down_proj.weight"
        ? [64, 96]
        : s
    );
    await assert.rejects(
      () => openModelDir({ source: dir, quant: "none", ...kernelsAndArena() }),
      new RegExp(
        `^SafetensorsError: ${path}: tensor model.layers.0.mlp.down_proj.weight has shape \\[64, 96\\] \\(BF16\\), expected \\[64, 128\\]$`,
      ),
    );
    await assert.rejects(
      () => openModelDir({ source: `${dir}/nope`, quant: "none", ...kernelsAndArena() }),
      /nope\/config.json: missing/,
    );
  });
});
