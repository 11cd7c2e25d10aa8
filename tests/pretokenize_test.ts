/**
 * tools/pretokenize.ts: what it writes is, example for example, what the trainer's data loader
 * makes from the original file (ids, labels, and the rows and batches built from them), and its
 * command line refuses bad flags and bad data without touching the output.
 */
import { deepStrictEqual, match, ok, strictEqual } from "node:assert/strict";
import { BatchSource, buildRows, loadExamples, type PackingMode } from "../src/data/dataset.ts";
import type { TokenizedExample } from "../src/data/example.ts";
import type { TextTokenizer } from "../src/data/tokenizer.ts";
import { bundledQwenTokenizerDir, loadTokenizerDir } from "../src/deno/tokenizer.ts";
import { makeCheckpoint } from "../tools/make_checkpoint.ts";
import { main, pretokenize } from "../tools/pretokenize.ts";

const demoChat = new URL("../examples/data/demo_chat.jsonl", import.meta.url).pathname;
/** The Qwen2.5 vocabulary rows: the bundled tokenizer (151665 ids) fits. */
const VOCAB = 151936;

/** A tiny random checkpoint with the Qwen2.5 vocabulary and the bundled tokenizer copied in. */
async function modelDir(tmp: string): Promise<string> {
  const dir = `${tmp}/model`;
  await makeCheckpoint({
    preset: "tiny-qwen2",
    out: dir,
    seed: 1,
    configOverrides: { vocab_size: VOCAB },
  });
  for (const f of ["tokenizer.json", "tokenizer_config.json"]) {
    await Deno.copyFile(`${bundledQwenTokenizerDir()}/${f}`, `${dir}/${f}`);
  }
  return dir;
}

async function load(path: string, tok: TextTokenizer | null): Promise<TokenizedExample[]> {
  return await loadExamples((await Deno.open(path)).readable, path, tok, VOCAB);
}

const plain = (rows: Iterable<TokenizedExample>) =>
  Array.from(rows, (r) => ({ ids: Array.from(r.inputIds), labels: Array.from(r.labels) }));

/** Prompt/completion and text lines (one long enough to be cut) plus a pre-tokenized line. */
const mixedLines = [
  { prompt: "Hello", completion: " World" },
  { text: "Hello World" },
  { prompt: "Translate to French: good morning", completion: " bonjour" },
  { input_ids: [5, 6, 7, 8], labels: [-100, 6, 7, 8] },
  { text: "The quick brown fox jumps over the lazy dog. ".repeat(6).trim() },
  { prompt: "A long prompt that is cut before its completion starts: ".repeat(3), completion: "x" },
];

let tok: TextTokenizer | null = null;
async function tokenizer(): Promise<TextTokenizer> {
  return tok ??= await loadTokenizerDir(bundledQwenTokenizerDir());
}

Deno.test("pretokenize: chat and prompt/completion + text data give the trainer the same examples, rows and batches", async () => {
  const tmp = await Deno.makeTempDir();
  try {
    const model = await modelDir(tmp);
    const mixed = `${tmp}/mixed.jsonl`;
    await Deno.writeTextFile(mixed, mixedLines.map((l) => JSON.stringify(l)).join("\n") + "\n");
    for (const input of [demoChat, mixed]) {
      const out = `${tmp}/out.jsonl`;
      const r = await pretokenize({ model, data: input, out, seqLen: null });
      const fromText = await load(input, await tokenizer());
      // The output needs no tokenizer: a text line in it would throw here.
      const fromIds = await load(out, null);
      strictEqual(r.examples, fromText.length);
      strictEqual(r.truncated, 0);
      deepStrictEqual(plain(fromIds), plain(fromText), input);
      // Sanity of the comparison itself: real masks made it through (not all -100, not all ids).
      const labels = fromIds.flatMap((e) => Array.from(e.labels));
      ok(labels.includes(-100) && labels.some((l) => l >= 0), input);
      for (const mode of ["greedy", "none"] as PackingMode[]) {
        const a = buildRows(fromText, 48, mode);
        const b = buildRows(fromIds, 48, mode);
        deepStrictEqual(plain(b.rows), plain(a.rows), `${input} ${mode}`);
        deepStrictEqual([b.truncated, b.dropped], [a.truncated, a.dropped]);
        const options = { batchSize: 2, seqLen: 48, padId: 0, seed: 3 };
        const sa = new BatchSource(a.rows, options), sb = new BatchSource(b.rows, options);
        for (let i = 0; i < 5; i++) deepStrictEqual(sb.next(), sa.next());
      }
    }
    // One line checked against known ids: "Hello World" + <|im_end|> (see example_test.ts).
    const lines = (await Deno.readTextFile(`${tmp}/out.jsonl`)).trim().split("\n");
    strictEqual(lines.length, mixedLines.length);
    deepStrictEqual(JSON.parse(lines[1]), {
      input_ids: [9707, 4337, 151645],
      labels: [9707, 4337, 151645],
    });
    deepStrictEqual(JSON.parse(lines[3]), { input_ids: [5, 6, 7, 8], labels: [-100, 6, 7, 8] });
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("pretokenize --seq-len cuts each example as the trainer would, and packs nothing", async () => {
  const tmp = await Deno.makeTempDir();
  try {
    const model = await modelDir(tmp);
    const mixed = `${tmp}/mixed.jsonl`;
    await Deno.writeTextFile(mixed, mixedLines.map((l) => JSON.stringify(l)).join("\n") + "\n");
    const T = 12;
    const r = await pretokenize({ model, data: mixed, out: `${tmp}/cut.jsonl`, seqLen: T });
    const fromText = await load(mixed, await tokenizer());
    const fromIds = await load(`${tmp}/cut.jsonl`, null);
    const longer = fromText.filter((e) => e.inputIds.length > T).length;
    ok(longer >= 2, "the data has examples to cut");
    strictEqual(r.truncated, longer);
    // Still one line per example (no packing, no dropping: the last one has no target left).
    deepStrictEqual(
      plain(fromIds),
      plain(fromText).map((e) => ({ ids: e.ids.slice(0, T), labels: e.labels.slice(0, T) })),
    );
    ok(plain(fromIds).some((e) => e.labels.every((l) => l === -100)));
    // Trained at the same --seq-len, the rows are the trainer's rows from the original file.
    for (const mode of ["greedy", "none"] as PackingMode[]) {
      const a = buildRows(fromText, T, mode);
      const b = buildRows(fromIds, T, mode);
      deepStrictEqual(plain(b.rows), plain(a.rows), mode);
      strictEqual(b.dropped, a.dropped);
    }
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

async function tool(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await main(argv, { out: (t) => void (out += t), err: (t) => void (err += t) });
  return { code, out, err };
}

Deno.test("pretokenize: --help, bad flags exit 2 with error: --flag: reason", async () => {
  const help = await tool(["--help"]);
  strictEqual(help.code, 0);
  for (const flag of ["--model", "--data", "--out", "--seq-len", "--max-line-bytes"]) {
    ok(help.out.includes(flag));
  }
  const tmp = await Deno.makeTempDir();
  try {
    const data = `${tmp}/d.jsonl`;
    await Deno.writeTextFile(data, '{"text":"hi"}\n');
    await Deno.mkdir(`${tmp}/bare`); // a directory without tokenizer.json
    const ok3 = ["--model", bundledQwenTokenizerDir(), "--data", data, "--out", `${tmp}/o.jsonl`];
    const cases: [string[], string][] = [
      [["--bogus"], "error: --bogus: unknown option (see --help)\n"],
      [["stray"], "error: stray: unexpected argument (see --help)\n"],
      [["--data", data, "--out", "o"], "error: --model: required\n"],
      [["--model", "m", "--out", "o"], "error: --data: required\n"],
      [["--model", "m", "--data", data], "error: --out: required\n"],
      [["--model"], "error: --model: needs a value\n"],
      [[...ok3, "--seq-len", "1"], 'error: --seq-len: expected an integer >= 2, got "1"\n'],
      [[...ok3, "--seq-len", "8.5"], 'error: --seq-len: expected an integer >= 2, got "8.5"\n'],
      [
        [...ok3, "--max-line-bytes", "0"],
        'error: --max-line-bytes: expected an integer >= 1, got "0"\n',
      ],
      [[...ok3.slice(0, 2), "--data", `${tmp}/none.jsonl`, "--out", "o"], "error: --data: "],
      [["--model", `${tmp}/none`, ...ok3.slice(2)], `error: --model: ${tmp}/none: no such dir`],
      [["--model", `${tmp}/bare`, ...ok3.slice(2)], `error: --model: ${tmp}/bare: no tokenizer`],
      [[...ok3.slice(0, 4), "--out", `${tmp}/no/o.jsonl`], `error: --out: ${tmp}/no: no such`],
      [[...ok3.slice(0, 4), "--out", data], `error: --out: ${data} is the --data file`],
      [
        [...ok3.slice(0, 4), "--out", `${tmp}/../${tmp.split("/").pop()}/d.jsonl`],
        "error: --out: ",
      ],
    ];
    for (const [argv, want] of cases) {
      const r = await tool(argv);
      strictEqual(r.code, 2, `${argv.join(" ")}: ${r.err}`);
      ok(r.err.startsWith(want), `${argv.join(" ")}: ${r.err}`);
    }
    ok(!(await Deno.stat(`${tmp}/o.jsonl`).then(() => true, () => false)), "nothing written");
    strictEqual(await Deno.readTextFile(data), '{"text":"hi"}\n', "the input is untouched");
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("pretokenize: a bad line stops with error: FILE:LINE, exit 1, and leaves --out as it was", async () => {
  const tmp = await Deno.makeTempDir();
  try {
    const data = `${tmp}/d.jsonl`;
    await Deno.writeTextFile(data, '{"text":"fine"}\n\n{"prompt":"no completion"}\n');
    const out = `${tmp}/o.jsonl`;
    await Deno.writeTextFile(out, "previous\n");
    const argv = ["--model", bundledQwenTokenizerDir(), "--data", data, "--out", out];
    const r = await tool(argv);
    strictEqual(r.code, 1);
    strictEqual(r.err, `error: ${data}:3: "completion" must be a string\n`);
    strictEqual(await Deno.readTextFile(out), "previous\n");
    // No temporary file left behind by the atomic write.
    const names = [];
    for await (const e of Deno.readDir(tmp)) names.push(e.name);
    deepStrictEqual(names.sort(), ["d.jsonl", "o.jsonl"]);
    // Fixed, it writes and says what it wrote.
    await Deno.writeTextFile(data, '{"text":"fine"}\n\n{"prompt":"a","completion":"b"}\n');
    const good = await tool(argv);
    strictEqual(good.code, 0, good.err);
    match(good.out, new RegExp(`^${out}: 2 examples, \\d+ tokens`));
    strictEqual((await Deno.readTextFile(out)).trim().split("\n").length, 2);
    // A line over --max-line-bytes: its line, its size, the flag; --out still as it was.
    const wrote = await Deno.readTextFile(out);
    const long = await tool([...argv, "--max-line-bytes", "20"]);
    strictEqual(long.code, 1);
    strictEqual(
      long.err,
      `error: ${data}:3: line is 31 bytes (limit 20 bytes, --max-line-bytes)\n`,
    );
    strictEqual(await Deno.readTextFile(out), wrote);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("pretokenize: every flag mistake is one line naming the flag, exit 2 (the shared tool flags)", async () => {
  for (
    const [argv, err] of [
      [[], "error: --model: required\n"],
      [["--bogus"], "error: --bogus: unknown option (see --help)\n"],
      [["--model"], "error: --model: needs a value\n"],
      [["stray"], "error: stray: unexpected argument (see --help)\n"],
      [["--model", "m"], "error: --data: required\n"],
      [["--model", "", "--data", "d"], "error: --model: required\n"],
      [["--model", "m", "--data", ""], "error: --data: required\n"],
      [["--model", "m", "--data", "d"], "error: --out: required\n"],
      [
        ["--model", "m", "--data", "d", "--out", "o", "--seq-len", "1"],
        'error: --seq-len: expected an integer >= 2, got "1"\n',
      ],
      [
        ["--model", "m", "--data", "d", "--out", "o", "--seq-len", "x"],
        'error: --seq-len: expected an integer >= 2, got "x"\n',
      ],
      [
        ["--model", "m", "--data", "d", "--out", "o", "--seq-len", "-3"],
        'error: --seq-len: a value starting with "-" must be written --seq-len=VALUE\n',
      ],
      [
        ["--model", "m", "--data", "d", "--out", "o", "--max-line-bytes", "0"],
        'error: --max-line-bytes: expected an integer >= 1, got "0"\n',
      ],
      [
        ["--model", "m", "--data", "d", "--out", "o", "--max-line-bytes", "1.5"],
        'error: --max-line-bytes: expected an integer >= 1, got "1.5"\n',
      ],
      [
        ["--model", "m", "--data", "nonexistent.jsonl", "--out", "o"],
        "error: --data: nonexistent.jsonl: no such file\n",
      ],
      [
        ["--model", "m", "--data", "d", "--out", "o", "--seq-len"],
        "error: --seq-len: needs a value\n",
      ],
      [["--help=no"], "error: --help: Option '--help' does not take an argument\n"],
      [["--seq-len=--x"], "error: --model: required\n"],
      [
        ["--model", "m", "--data", "d", "--out", "o", "--seq-len", ""],
        'error: --seq-len: expected an integer >= 2, got ""\n',
      ],
    ] as const
  ) {
    const r = await tool([...argv]);
    deepStrictEqual([r.code, r.out, r.err], [2, "", err], argv.join(" "));
  }
});
