import assert from "node:assert/strict";
import { MemorySource } from "./byte_source.ts";
import { SafetensorsError, SafetensorsFile } from "./safetensors.ts";
import { serializeSafetensors } from "./safetensors_writer.ts";
import { makeRandom } from "../kernels/_testing.ts";

/** A file from a raw header string and a data buffer (no validation: for bad files). */
function rawFile(header: string, data: Uint8Array | number = 0, lengthOverride?: bigint) {
  const json = new TextEncoder().encode(header);
  const body = typeof data === "number" ? new Uint8Array(data) : data;
  const out = new Uint8Array(8 + json.length + body.length);
  new DataView(out.buffer).setBigUint64(0, lengthOverride ?? BigInt(json.length), true);
  out.set(json, 8);
  out.set(body, 8 + json.length);
  return out;
}

const open = (bytes: Uint8Array, name = "bad.safetensors") =>
  SafetensorsFile.open(new MemorySource(name, bytes));

Deno.test("reader round-trips the writer's output, metadata and zero-size tensors", async () => {
  const f32 = new Uint8Array(new Float32Array([1.5, -2, 3, 4, 5, 6]).buffer);
  const bytes = serializeSafetensors([
    { name: "model.w", dtype: "F32", shape: [2, 3], data: f32 },
    { name: "z", dtype: "BF16", shape: [0], data: new Uint8Array(0) },
    { name: "s", dtype: "I64", shape: [], data: new Uint8Array(8).fill(1) },
  ], { format: "pt", note: "é" });
  const file = await open(bytes, "ok.safetensors");
  assert.deepEqual(file.names(), ["model.w", "z", "s"]);
  assert.deepEqual(file.metadata, { format: "pt", note: "é" });
  assert.deepEqual(file.info("model.w").shape, [2, 3]);
  assert.deepEqual(await file.read("model.w"), f32);
  assert.equal((await file.read("z")).length, 0);
  const part = new Uint8Array(8);
  await file.readInto("model.w", part, 4);
  assert.deepEqual(part, f32.subarray(4, 12));
  await assert.rejects(
    () => file.read("nope"),
    /^SafetensorsError: ok.safetensors: missing tensor nope$/,
  );
  await assert.rejects(
    () => file.readInto("model.w", new Uint8Array(8), 20),
    /ok.safetensors: tensor model.w: read of 8 bytes at 20 is outside its 24 bytes/,
  );
});

Deno.test("reader accepts an empty header and space padding, rejects other padding", async () => {
  assert.deepEqual((await open(rawFile("{}"))).names(), []);
  assert.deepEqual(
    (await open(rawFile('{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}    ', 1))).names(),
    ["a"],
  );
  await assert.rejects(() => open(rawFile("{}\n")), /followed by something other than spaces/);
});

const entry = (dtype: string, shape: unknown, offsets: unknown) =>
  JSON.stringify({ dtype, shape, data_offsets: offsets });

const BAD: [string, Uint8Array, RegExp][] = [
  ["shorter than the length prefix", new Uint8Array(5), /file is 5 bytes, too small/],
  [
    "header length over the limit",
    rawFile("{}", 0, 100_000_001n),
    /header length 100000001 exceeds the limit/,
  ],
  ["header length past the end", rawFile("{}", 0, 50n), /header length 50 exceeds the file size/],
  ["huge u64 header length", rawFile("{}", 0, 0xffffffffffffffffn), /exceeds the limit/],
  [
    "not UTF-8",
    (() => {
      const f = rawFile('{"\u00ff":1}');
      f[10] = 0xff;
      return f;
    })(),
    /not valid UTF-8/,
  ],
  ["not JSON", rawFile("{nope}"), /not valid JSON/],
  ["array header", rawFile("[1]"), /does not start with '\{'/],
  [
    "metadata value not a string",
    rawFile('{"__metadata__":{"a":1}}'),
    /__metadata__ value for "a" is not a string/,
  ],
  ["metadata not an object", rawFile('{"__metadata__":"x"}'), /__metadata__ is not an object/],
  [
    "duplicate tensor",
    rawFile(`{"a":${entry("U8", [1], [0, 1])},"a":${entry("U8", [1], [0, 1])}}`, 1),
    /duplicate key "a"/,
  ],
  [
    "duplicate field",
    rawFile('{"a":{"dtype":"U8","dtype":"U8","shape":[1],"data_offsets":[0,1]}}', 1),
    /duplicate key "dtype" in the header \(inside "a"\)/,
  ],
  ["duplicate metadata key", rawFile('{"__metadata__":{"k":"1","k":"2"}}'), /duplicate key "k"/],
  [
    "unknown dtype",
    rawFile(`{"a":${entry("F128", [1], [0, 16])}}`, 16),
    /tensor a: unknown dtype "F128"/,
  ],
  [
    "negative dim",
    rawFile(`{"a":${entry("U8", [-1], [0, 0])}}`),
    /tensor a: shape \[-1\] has an entry/,
  ],
  ["fractional dim", rawFile(`{"a":${entry("U8", [1.5], [0, 1])}}`, 1), /tensor a: shape/],
  ["string dim", rawFile(`{"a":${entry("U8", ["2"], [0, 2])}}`, 2), /tensor a: shape/],
  [
    "shape not array",
    rawFile(`{"a":${entry("U8", 2, [0, 2])}}`, 2),
    /tensor a: shape is not an array/,
  ],
  [
    "extra field",
    rawFile('{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"x":1}}', 1),
    /tensor a: unknown field "x"/,
  ],
  ["entry not object", rawFile('{"a":3}'), /tensor a: entry is not an object/],
  [
    "offsets wrong arity",
    rawFile(`{"a":${entry("U8", [1], [0])}}`, 1),
    /tensor a: data_offsets \[0\]/,
  ],
  ["end before begin", rawFile(`{"a":${entry("U8", [0], [1, 0])}}`, 1), /end before begin/],
  [
    "size mismatch",
    rawFile(`{"a":${entry("F32", [2], [0, 4])}}`, 4),
    /tensor a: .* span 4 bytes, but F32 \[2\] needs 8/,
  ],
  [
    "numel overflow",
    rawFile(`{"a":${entry("F64", [4294967296, 4294967296, 4294967296], [0, 8])}}`, 8),
    /needs 633825300114114700748351602688$/,
  ],
  [
    "numel wraps to 0 in u64",
    rawFile(`{"a":${entry("U8", [4294967296, 4294967296], [0, 0])}}`),
    /span 0 bytes, but U8 \[4294967296,4294967296\] needs 18446744073709551616/,
  ],
  [
    "gap",
    rawFile(`{"a":${entry("U8", [1], [0, 1])},"b":${entry("U8", [1], [2, 3])}}`, 3),
    /tensor b: gap in the data before offset 2/,
  ],
  ["not starting at 0", rawFile(`{"a":${entry("U8", [1], [1, 2])}}`, 2), /tensor a: gap/],
  [
    "overlap",
    rawFile(`{"a":${entry("U8", [2], [0, 2])},"b":${entry("U8", [2], [1, 3])}}`, 3),
    /tensor b: .*overlap/,
  ],
  [
    "truncated data",
    rawFile(`{"a":${entry("U8", [4], [0, 4])}}`, 3),
    /truncated: tensors need 4 data bytes, only 3/,
  ],
  ["trailing bytes", rawFile(`{"a":${entry("U8", [4], [0, 4])}}`, 6), /2 trailing bytes/],
];

for (const [what, bytes, pattern] of BAD) {
  Deno.test(`reader rejects: ${what}`, async () => {
    const err = await open(bytes).then(() => null, (e) => e);
    assert.ok(err instanceof SafetensorsError, `expected SafetensorsError, got ${err}`);
    assert.ok(err.message.startsWith("bad.safetensors: "), err.message);
    assert.match(err.message, pattern);
  });
}

Deno.test("reader validates the whole header before reading any tensor data", async () => {
  const bytes = rawFile(`{"a":${entry("U8", [4], [0, 4])},"b":${entry("U8", [1], [9, 10])}}`, 10);
  const reads: [number, number][] = [];
  const src = new MemorySource("spy.safetensors", bytes);
  const orig = src.read.bind(src);
  src.read = (o, n) => {
    reads.push([o, n]);
    return orig(o, n);
  };
  await assert.rejects(() => SafetensorsFile.open(src), /gap/);
  const headerEnd = bytes.length - 10;
  assert.ok(reads.every(([o, n]) => o + n <= headerEnd), `read data: ${JSON.stringify(reads)}`);
});

Deno.test("fuzz: mutated headers and truncations give a parse or a SafetensorsError, never another exception", async () => {
  const rand = makeRandom(20240611);
  const r = (n: number) => Math.floor(((rand() + 1) / 2) * n);
  const seeds = [
    serializeSafetensors([
      { name: "a", dtype: "F32", shape: [2, 2], data: new Uint8Array(16) },
      { name: "b", dtype: "BF16", shape: [3], data: new Uint8Array(6) },
      { name: "c", dtype: "U8", shape: [0], data: new Uint8Array(0) },
    ], { format: "pt" }),
    serializeSafetensors([{ name: "x", dtype: "I64", shape: [1, 1, 1], data: new Uint8Array(8) }]),
  ];
  const alphabet = new TextEncoder().encode('{}[]",:0123456789-e.  \\u"__metadata__dtypeshape');
  const deadline = performance.now() + 4000;
  let parsed = 0, rejected = 0, cases = 0;
  for (; cases < 20000 && performance.now() < deadline; cases++) {
    const base = seeds[r(seeds.length)];
    let f: Uint8Array = base.slice();
    const kind = r(5);
    if (kind === 0) f = f.subarray(0, r(f.length)); // truncation
    else if (kind === 1) { // appended bytes
      const g = new Uint8Array(f.length + 1 + r(8));
      g.set(f);
      f = g;
    } else {
      const edits = 1 + r(4);
      for (let k = 0; k < edits; k++) {
        const at = r(f.length);
        f[at] = kind === 2 ? r(256) : alphabet[r(alphabet.length)];
      }
      if (kind === 4) f.set([r(256), r(4)], r(8)); // length prefix
    }
    try {
      const file = await open(f);
      for (const n of file.names()) await file.read(n);
      parsed++;
    } catch (e) {
      if (!(e instanceof SafetensorsError)) throw new Error(`case ${cases}: ${e}`, { cause: e });
      rejected++;
    }
  }
  assert.ok(cases >= 500, `only ${cases} cases ran`);
  assert.ok(rejected > cases / 2, `${rejected} of ${cases} rejected`);
  assert.ok(parsed > 0, "some mutations (e.g. inside padding) are still valid files");
});
