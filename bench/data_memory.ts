/**
 * Whole-process peak memory of loading training data, measured from a child process per case
 * (VmHWM from /proc/self/status), so that nothing else this script did counts.
 *
 * Files are generated in a temporary directory:
 * - `chat.jsonl`: multi-turn `{"messages"}` conversations, tokenized with the bundled Qwen2.5
 *   tokenizer and chat template (the user path);
 * - `chat_ids.jsonl`: the same kind of rows pre-tokenized (`{"input_ids","labels"}`, what
 *   tools/pretokenize.ts writes; the lab path, no tokenizer);
 * - `one_line.jsonl`: one pre-tokenized line of 50 MB, then a short one.
 *
 * Each case loads a file the way `train.ts` does (`loadRowsFile`: one streamed pass, packed rows
 * in `Int32Array` blocks) and reports the process peak, the resident size just before loading
 * (the runtime, the modules and, where needed, the built tokenizer) and what the rows hold.
 * `--before COMMIT` adds the same cases for that commit's loader (`loadExamples` + `buildRows`,
 * which every version has; its `src/` is unpacked with `git archive` into the temporary
 * directory), for a before/after table.
 *
 * Usage:
 *   npx deno run -A bench/data_memory.ts [--chat-mb 200] [--ids-mb 200] [--line-mb 50]
 *     [--before COMMIT] [--out bench/results/data_memory.md]
 *
 * @module
 */
import { parseArgs } from "node:util";

/** One measurement, as the child prints it. */
interface Measured {
  /** Resident size right before the data is read (after the tokenizer, if one is needed). */
  rssBefore: number;
  /** Whole-process peak (VmHWM) at the end. */
  peak: number;
  rows: number;
  tokens: number;
  /** Bytes of the held rows (TokenRows.bytesHeld), null for a loader that has no such figure. */
  bytesHeld: number | null;
  seconds: number;
  /** The one-line error, when the load was refused. */
  error: string | null;
}

interface ChildSpec {
  /** Root of the checkout whose loader is measured. */
  src: string;
  /** "rows": loadRowsFile (streamed into TokenRows); "examples": loadExamples + buildRows. */
  loader: "rows" | "examples";
  file: string;
  tokenizer: boolean;
  maxLineBytes: number | null;
  seqLen: number;
}

const VOCAB = 151936;

async function child(spec: ChildSpec): Promise<void> {
  const { readProcessMemory } = await import("../src/deno/process_memory.ts");
  const src = new URL(`file://${spec.src}/src/data/`);
  const dataset = await import(new URL("dataset.ts", src).href);
  let tok = null;
  if (spec.tokenizer) {
    const t = await import(new URL("../deno/tokenizer.ts", src).href);
    tok = await t.loadTokenizerDir(t.bundledQwenTokenizerDir());
  }
  const rssBefore = readProcessMemory().rssBytes!;
  const t0 = performance.now();
  let rows = 0, tokens = 0, bytesHeld: number | null = null, error: string | null = null;
  try {
    if (spec.loader === "rows") {
      const { loadRowsFile } = await import(new URL("../deno/dataset.ts", src).href);
      const r = await loadRowsFile(spec.file, {
        tokenizer: tok,
        vocabSize: VOCAB,
        seqLen: spec.seqLen,
        packing: "greedy",
        ...(spec.maxLineBytes ? { maxLineBytes: spec.maxLineBytes } : {}),
      });
      rows = r.rows.length;
      tokens = r.rows.tokenCount;
      bytesHeld = r.rows.bytesHeld;
    } else {
      const bytes = (await Deno.open(spec.file)).readable;
      const examples = await dataset.loadExamples(bytes, spec.file, tok, VOCAB);
      const packed = dataset.buildRows(examples, spec.seqLen, "greedy");
      rows = packed.rows.length;
      for (const r of packed.rows) tokens += r.inputIds.length;
    }
  } catch (e) {
    error = (e as Error).message;
  }
  const seconds = (performance.now() - t0) / 1000;
  const m = readProcessMemory();
  const out: Measured = { rssBefore, peak: m.peakBytes!, rows, tokens, bytesHeld, seconds, error };
  console.log(JSON.stringify(out));
}

/** Deterministic words for generated text. */
const WORDS = (
  "the a model learns from data while memory stays small and each token counts toward the " +
  "answer of a question about rivers mountains numbers code weather music history science " +
  "Grüße 語彙 café naïve 🦙 déjà vu"
).split(" ");

function makeRng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function sentence(rng: () => number, words: number): string {
  const out: string[] = [];
  for (let i = 0; i < words; i++) out.push(WORDS[Math.floor(rng() * WORDS.length)]);
  return out.join(" ") + ".";
}

/** Writes lines from `line(i)` to `path` until it holds `bytes`; returns the bytes written. */
async function writeLines(path: string, bytes: number, line: (i: number) => string) {
  const file = await Deno.open(path, { write: true, create: true, truncate: true });
  const enc = new TextEncoder();
  let written = 0;
  let pending = "";
  for (let i = 0; written + pending.length < bytes; i++) {
    pending += line(i) + "\n";
    if (pending.length >= 1 << 20) {
      const b = enc.encode(pending);
      await file.write(b);
      written += b.length;
      pending = "";
    }
  }
  const b = enc.encode(pending);
  await file.write(b);
  file.close();
  return written + b.length;
}

function chatLine(rng: () => number): string {
  const messages = [{ role: "system", content: sentence(rng, 6) }];
  const turns = 1 + Math.floor(rng() * 3);
  for (let t = 0; t < turns; t++) {
    messages.push({ role: "user", content: sentence(rng, 8 + Math.floor(rng() * 30)) });
    messages.push({ role: "assistant", content: sentence(rng, 10 + Math.floor(rng() * 60)) });
  }
  return JSON.stringify({ messages });
}

function idsLine(rng: () => number): string {
  const n = 40 + Math.floor(rng() * 360);
  const prompt = Math.floor(n * rng() * 0.6);
  const ids = Array.from({ length: n }, () => Math.floor(rng() * 151000));
  const labels = ids.map((id, i) => (i < prompt ? -100 : id));
  return JSON.stringify({ input_ids: ids, labels });
}

function mb(bytes: number | null): string {
  return bytes === null ? "–" : (bytes / (1 << 20)).toFixed(1);
}

async function machine(): Promise<string> {
  try {
    const out = await new Deno.Command("lscpu", { stdout: "piped" }).output();
    const line = new TextDecoder().decode(out.stdout).split("\n").find((l) =>
      l.startsWith("Model name")
    );
    return `${line?.split(":")[1].trim() ?? "unknown CPU"}, ${navigator.hardwareConcurrency} cores`;
  } catch {
    return "unknown machine";
  }
}

async function measure(spec: ChildSpec): Promise<Measured> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      ...(spec.src === ROOT ? [] : ["--config", `${spec.src}/deno.json`]),
      new URL(import.meta.url).pathname,
      "--child",
      JSON.stringify(spec),
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout).trim().split("\n").pop() ?? "";
  if (!out.success || !text.startsWith("{")) {
    throw new Error(`child failed: ${new TextDecoder().decode(out.stderr).slice(-2000)}`);
  }
  return JSON.parse(text);
}

const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");

async function parent(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      "chat-mb": { type: "string", default: "200" },
      "ids-mb": { type: "string", default: "200" },
      "line-mb": { type: "string", default: "50" },
      "seq-len": { type: "string", default: "256" },
      before: { type: "string" },
      out: { type: "string", default: `${ROOT}/bench/results/data_memory.md` },
    },
    strict: true,
  });
  const seqLen = Number(values["seq-len"]);
  const tmp = await Deno.makeTempDir({ prefix: "slimtune-data-memory-" });
  try {
    let beforeDir: string | null = null;
    if (values.before) {
      beforeDir = `${tmp}/before`;
      await Deno.mkdir(beforeDir);
      const archive = await new Deno.Command("git", {
        args: ["archive", "--format=tar", values.before, "src", "deno.json", "package.json"],
        cwd: ROOT,
        stdout: "piped",
      }).output();
      if (!archive.success) throw new Error(`git archive ${values.before} failed`);
      const tar = new Deno.Command("tar", { args: ["-x", "-C", beforeDir], stdin: "piped" })
        .spawn();
      const w = tar.stdin.getWriter();
      await w.write(archive.stdout);
      await w.close();
      if (!(await tar.status).success) throw new Error("tar -x failed");
      await Deno.symlink(`${ROOT}/node_modules`, `${beforeDir}/node_modules`);
    }
    const rng = makeRng(12);
    const chat = `${tmp}/chat.jsonl`, ids = `${tmp}/chat_ids.jsonl`, line = `${tmp}/one_line.jsonl`;
    const sizes = new Map<string, number>();
    sizes.set(chat, await writeLines(chat, Number(values["chat-mb"]) * 1e6, () => chatLine(rng)));
    sizes.set(ids, await writeLines(ids, Number(values["ids-mb"]) * 1e6, () => idsLine(rng)));
    {
      // One line of `line-mb` MB of ids, then a short line.
      const want = Number(values["line-mb"]) * 1e6;
      const file = await Deno.open(line, { write: true, create: true, truncate: true });
      const enc = new TextEncoder();
      let n = await file.write(enc.encode('{"input_ids":['));
      const piece = enc.encode(
        Array.from({ length: 1 << 16 }, (_, i) => 100000 + (i * 7919) % 50000).join(",") + ",",
      );
      while (n < want) n += await file.write(piece.subarray(0, Math.min(piece.length, want - n)));
      n += await file.write(enc.encode('1]}\n{"input_ids":[1,2,3]}\n'));
      file.close();
      sizes.set(line, n);
    }
    const cases: [string, ChildSpec][] = [];
    const base = { seqLen, maxLineBytes: null, src: ROOT, loader: "rows" as const };
    const add = (name: string, spec: ChildSpec) => {
      cases.push([name, spec]);
      if (beforeDir) {
        cases.push([`${name}, before`, { ...spec, src: beforeDir, loader: "examples" }]);
      }
    };
    add("chat messages, Qwen2.5 tokenizer", { ...base, file: chat, tokenizer: true });
    add("chat pre-tokenized", { ...base, file: ids, tokenizer: false });
    const lineName = `one ${values["line-mb"]} MB line`;
    add(`${lineName}, default limit`, { ...base, file: line, tokenizer: false });
    const raised = 2 ** Math.ceil(Math.log2(sizes.get(line)!));
    cases.push([`${lineName}, --max-line-bytes ${raised / (1 << 20)} MiB`, {
      ...base,
      file: line,
      tokenizer: false,
      maxLineBytes: raised,
    }]);
    const rows: string[] = [];
    for (const [name, spec] of cases) {
      const m = await measure(spec);
      console.log(name, JSON.stringify(m));
      const what = m.error
        ? `refused: \`${m.error.replace(tmp + "/", "")}\``
        : `${m.rows} rows, ${m.tokens} tokens`;
      rows.push(
        `| ${name} | ${mb(sizes.get(spec.file)!)} | ${what} | ${mb(m.bytesHeld)} | ` +
          `${mb(m.rssBefore)} | **${mb(m.peak)}** | ${mb(m.peak - m.rssBefore)} | ` +
          `${m.seconds.toFixed(1)} |`,
      );
    }
    const text = `# Data loading: whole-process peak memory

\`npx deno run -A bench/data_memory.ts${
      argv.length ? " " + argv.join(" ") : ""
    }\` on ${await machine()},
Deno ${Deno.version.deno}. Each case is a fresh child process; seq-len ${seqLen}, greedy packing.
"before load" is the resident size after the runtime, the modules and (chat messages) the built
tokenizer; "held" is what the packed rows hold (\`TokenRows.bytesHeld\`, what \`--max-memory\`
counts); MB = 2^20 bytes, file sizes too.
${
      values.before
        ? `Rows marked "before" load the same file with the loader of commit ${values.before} ` +
          `(\`loadExamples\` + \`buildRows\`: every example kept, then packed; no line limit).\n`
        : ""
    }
| case | file MB | result | held MB | RSS before load MB | process peak MB | peak − before MB | s |
|---|---|---|---|---|---|---|---|
${rows.join("\n")}
`;
    await Deno.writeTextFile(values.out!, text);
    console.log(text);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
}

if (import.meta.main) {
  const i = Deno.args.indexOf("--child");
  if (i >= 0) await child(JSON.parse(Deno.args[i + 1]));
  else await parent(Deno.args);
}
