import assert from "node:assert/strict";
import { type ByteSource, MemorySource } from "./byte_source.ts";
import {
  FULL_HASH_BYTES,
  SAMPLE_EDGE_BYTES,
  SAMPLE_WINDOW_BYTES,
  SAMPLE_WINDOWS,
  sampledContentHash,
  sampleRanges,
  sha256Hex,
  sourceIdentity,
} from "./cache_identity.ts";

/** Deterministic pseudo-random bytes (xorshift), so every window holds distinct content. */
function noise(n: number, seed = 1): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 255;
  }
  return out;
}

/** A memory source that counts reads and may report an identity of its own. */
class CountingSource implements ByteSource {
  reads = 0;
  readonly inner: MemorySource;
  identity?: () => Promise<string | null>;

  constructor(readonly name: string, bytes: Uint8Array, own?: string | null) {
    this.inner = new MemorySource(name, bytes);
    if (own !== undefined) this.identity = () => Promise.resolve(own);
  }

  size(): Promise<number> {
    return this.inner.size();
  }

  read(offset: number, length: number): Promise<Uint8Array> {
    this.reads++;
    return this.inner.read(offset, length);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

Deno.test("sha256Hex matches the known digest of 'abc'", async () => {
  assert.equal(
    await sha256Hex(new TextEncoder().encode("abc")),
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
  );
});

Deno.test("sampleRanges: small files whole; large ones edges plus evenly spaced windows, in bounds", () => {
  assert.deepEqual(sampleRanges(0), [[0, 0]]);
  assert.deepEqual(sampleRanges(FULL_HASH_BYTES), [[0, FULL_HASH_BYTES]]);
  for (const size of [FULL_HASH_BYTES + 1, 3_000_000, 5e9]) {
    const r = sampleRanges(size);
    assert.equal(r.length, SAMPLE_WINDOWS + 2);
    assert.deepEqual(r[0], [0, SAMPLE_EDGE_BYTES]);
    assert.deepEqual(r.at(-1), [size - SAMPLE_EDGE_BYTES, SAMPLE_EDGE_BYTES]);
    for (let i = 1; i < r.length; i++) {
      const [prev, prevLen] = r[i - 1];
      assert.ok(prev + prevLen <= r[i][0], `ranges overlap at ${i} for size ${size}`);
      assert.ok(r[i][0] + r[i][1] <= size);
    }
    for (const [, len] of r.slice(1, -1)) assert.equal(len, SAMPLE_WINDOW_BYTES);
    // Evenly spaced: consecutive windows are the same distance apart, up to rounding.
    const gaps = r.slice(2, -1).map(([o], i) => o - r[i + 1][0]);
    assert.ok(Math.max(...gaps) - Math.min(...gaps) <= 1, JSON.stringify(gaps));
  }
});

Deno.test("sampled hash: stable for the same bytes, changes with any sampled byte or the size", async () => {
  const size = 3 * FULL_HASH_BYTES;
  const bytes = noise(size);
  const base = await sampledContentHash(new MemorySource("a", bytes));
  assert.match(base, /^sha256 [0-9a-f]{64}$/);
  assert.equal(await sampledContentHash(new MemorySource("b", bytes.slice())), base, "by content");

  // One byte changed in each sampled range (its first and last byte) changes the hash.
  for (const [offset, length] of sampleRanges(size)) {
    for (const at of [offset, offset + length - 1]) {
      const changed = bytes.slice();
      changed[at] ^= 0x40;
      assert.notEqual(await sampledContentHash(new MemorySource("c", changed)), base, `at ${at}`);
    }
  }
  // The documented limit: a byte between samples is not seen.
  const [o1, l1] = sampleRanges(size)[1];
  const between = bytes.slice();
  between[o1 + l1 + 1] ^= 0x40;
  assert.equal(await sampledContentHash(new MemorySource("d", between)), base);
  // Same samples, different size: the size is hashed too.
  const longer = new Uint8Array(size + 1);
  longer.set(bytes);
  longer.set(bytes.subarray(size - SAMPLE_EDGE_BYTES), size + 1 - SAMPLE_EDGE_BYTES);
  assert.notEqual(await sampledContentHash(new MemorySource("e", longer)), base);

  // Small files are hashed whole: a change anywhere is seen, and an empty file hashes.
  const small = noise(100_000, 7);
  const smallHash = await sampledContentHash(new MemorySource("f", small));
  small[54_321] ^= 1;
  assert.notEqual(await sampledContentHash(new MemorySource("f", small)), smallHash);
  assert.match(await sampledContentHash(new MemorySource("g", new Uint8Array(0))), /^sha256 /);
});

Deno.test("sourceIdentity: the source's own identity without reading; else the sampled hash", async () => {
  const bytes = noise(2 * FULL_HASH_BYTES, 3);
  const own = new CountingSource("own", bytes, "local-file [1,2,3,4]");
  assert.equal(await sourceIdentity(own), "local-file [1,2,3,4]");
  assert.equal(own.reads, 0, "an identity needs no sampling");

  const hash = await sampledContentHash(new MemorySource("m", bytes));
  const none = new CountingSource("none", bytes, null);
  assert.equal(await sourceIdentity(none), hash, "identity null: sampled");
  assert.equal(none.reads, SAMPLE_WINDOWS + 2);
  const lacking = new CountingSource("lacking", bytes);
  assert.equal(await sourceIdentity(lacking), hash, "no identity method: sampled");
});
