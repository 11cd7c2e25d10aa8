import assert from "node:assert/strict";
import {
  dataIdentity,
  describeDataChange,
  HASHED_PREFIX_BYTES,
  parseDataIdentity,
} from "./data_identity.ts";

/** A stream of `bytes` cut into chunks of `chunk` bytes. */
const chunked = (bytes: Uint8Array, chunk: number): ReadableStream<Uint8Array> =>
  ReadableStream.from(
    Array.from(
      { length: Math.ceil(bytes.length / chunk) },
      (_, i) => bytes.slice(i * chunk, (i + 1) * chunk),
    ),
  );

const text = (s: string) => new TextEncoder().encode(s);

Deno.test("data identity: bytes, lines (a last line without newline counts) and the prefix hash", async () => {
  const a = await dataIdentity(chunked(text('{"text":"a"}\n{"text":"b"}\n'), 5));
  assert.equal(a.bytes, 26);
  assert.equal(a.lines, 2);
  const emptySha = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
  assert.deepEqual(await dataIdentity(chunked(new Uint8Array(0), 1)), {
    bytes: 0,
    lines: 0,
    sha256FirstMiB: emptySha,
  });
  assert.equal((await dataIdentity(chunked(text("x\ny"), 1))).lines, 2);
  // The chunking does not change the identity.
  assert.deepEqual(await dataIdentity(chunked(text('{"text":"a"}\n{"text":"b"}\n'), 1)), a);
  // SHA-256 of "abc", a published test vector.
  assert.equal(
    (await dataIdentity(chunked(text("abc"), 2))).sha256FirstMiB,
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
  );
});

Deno.test("data identity: only the first MiB is hashed; size and lines cover the rest", async () => {
  const big = new Uint8Array(HASHED_PREFIX_BYTES + 100).fill(0x61);
  const edited = big.slice();
  edited[HASHED_PREFIX_BYTES + 50] = 0x62;
  const x = await dataIdentity(chunked(big, 65536 + 7));
  const y = await dataIdentity(chunked(edited, 4096));
  assert.equal(x.sha256FirstMiB, y.sha256FirstMiB);
  assert.equal(describeDataChange(x, y), null, "an edit past the first MiB of the same size");
  edited[10] = 0x62;
  const z = await dataIdentity(chunked(edited, 4096));
  assert.equal(describeDataChange(x, z), "the first MiB differs");
  edited[HASHED_PREFIX_BYTES + 60] = 0x0a;
  const w = await dataIdentity(chunked(edited, 4096));
  assert.equal(describeDataChange(x, w), "1 lines then, 2 now");
  const longer = await dataIdentity(chunked(new Uint8Array(big.length + 1).fill(0x61), 4096));
  assert.equal(describeDataChange(x, longer), `${big.length} bytes then, ${big.length + 1} now`);
});

Deno.test("data identity: a stored identity parses back; anything else is null", async () => {
  const a = await dataIdentity(chunked(text("a\n"), 8));
  assert.deepEqual(parseDataIdentity(JSON.parse(JSON.stringify(a))), a);
  assert.equal(parseDataIdentity(null), null);
  assert.equal(parseDataIdentity("a"), null);
  assert.equal(parseDataIdentity({ ...a, bytes: 1.5 }), null);
  assert.equal(parseDataIdentity({ ...a, lines: "2" }), null);
  assert.equal(parseDataIdentity({ bytes: 1, lines: 1 }), null);
});
