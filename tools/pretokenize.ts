/**
 * Pre-tokenizes a training data file once, so that `train.ts` never has to build the tokenizer
 * (its process memory is measured in bench/results/tokenizer.md). Every example of IN.jsonl
 * (text, prompt/completion, messages or already pre-tokenized) becomes one
 * `{"input_ids":[...],"labels":[...]}` line of OUT.jsonl with exactly
 * the ids and labels the trainer would have made from it: the same parsing code
 * (`parseExampleLine`), the same tokenizer loading as the CLI (`openModelTokenizer`), the same
 * chat template rendering and loss masks (-100 on prompt and non-assistant tokens).
 *
 * `--seq-len T` applies the trainer's per-example rule of cutting examples longer than T tokens
 * to their first T (that is the only step before packing); packing and shuffling stay with the
 * trainer. Without it examples are kept whole, and the trainer cuts them at its own --seq-len.
 *
 * Usage:
 *   npx deno run -A tools/pretokenize.ts --model DIR --data IN.jsonl --out OUT.jsonl [--seq-len T]
 *     [--max-line-bytes N]
 *
 * OUT.jsonl is written atomically: a bad line (`error: FILE:LINE: reason`, exit 1) leaves it as
 * it was.
 *
 * @module
 */
import { readExampleLines } from "../src/data/dataset.ts";
import { DEFAULT_MAX_LINE_BYTES } from "../src/data/jsonl.ts";
import { DataError, type TokenizedExample } from "../src/data/example.ts";
import type { TextTokenizer } from "../src/data/tokenizer.ts";
import { parseModelConfig } from "../src/io/config.ts";
import { isInputError } from "../src/io/input_error.ts";
import { FileWriteError, writeFileAtomic } from "../src/deno/fs.ts";
import { unexpectedErrorText } from "../src/runtime/unexpected_error.ts";
import { canonicalPath } from "../src/deno/run_dir.ts";
import { UsageError } from "../src/cli/usage.ts";
import { parseToolFlags } from "../src/cli/tool_flags.ts";
import {
  checkTokenizerFits,
  fetchText,
  isUrl,
  openModelTokenizer,
} from "../src/deno/model_location.ts";

/** What {@link pretokenize} does. */
export interface PretokenizeOptions {
  /** Model directory or http(s) URL holding `tokenizer.json` (and normally `config.json`). */
  model: string;
  /** Input JSONL. */
  data: string;
  /** Output JSONL (written atomically). */
  out: string;
  /** Cut examples longer than this many tokens, as the trainer's --seq-len does; null = never. */
  seqLen: number | null;
  /** Longest input line accepted, in bytes (default 8 MiB, as the trainer's). */
  maxLineBytes?: number;
}

/** What {@link pretokenize} wrote. */
export interface PretokenizeResult {
  examples: number;
  tokens: number;
  /** Examples cut at `seqLen`. */
  truncated: number;
  /** Upper bound of valid ids the input's own `input_ids` lines were checked against. */
  vocabSize: number;
}

const HELP =
  `usage: npx deno run -A tools/pretokenize.ts --model DIR --data IN.jsonl --out OUT.jsonl [--seq-len T]

Writes one {"input_ids":[...],"labels":[...]} line per example of IN.jsonl, with the ids and labels
train.ts would make from it (chat template, -100 on prompt / non-assistant tokens). Training from
OUT.jsonl needs no tokenizer, which saves the memory a tokenizer holds (bench/results/tokenizer.md).

  --model DIR|URL  model directory (or http(s) URL) with tokenizer.json; its config.json, when
                   present, gives the vocabulary size input_ids are checked against
  --data FILE      input JSONL (text, prompt/completion, messages or input_ids lines)
  --out FILE       output JSONL, written atomically
  --seq-len T      cut examples longer than T tokens, as train.ts --seq-len T does (default: keep
                   whole; the trainer cuts at its own --seq-len)
  --max-line-bytes N
                   longest input line accepted, in bytes (default ${DEFAULT_MAX_LINE_BYTES}, as train.ts)
  -h, --help       this help
`;

/** The model's config.json as text, or null when it has none. */
async function readConfigText(model: string): Promise<string | null> {
  if (isUrl(model)) return await fetchText(`${model.replace(/\/+$/, "")}/config.json`);
  try {
    return await Deno.readTextFile(`${model}/config.json`);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

/**
 * The vocabulary size the trainer checks ids against: config.json's `vocab_size` (the embedding
 * rows), else the tokenizer's own size. Refuses a tokenizer larger than the model, as the CLI does.
 */
async function vocabSizeOf(model: string, tok: TextTokenizer): Promise<number> {
  const text = await readConfigText(model);
  if (text === null) return tok.vocabSize;
  const config = parseModelConfig(text, `${model}/config.json`);
  checkTokenizerFits(model, tok, config.vocabSize);
  return config.vocabSize;
}

/** One output line. Labels are always written, so the line means the same without defaults. */
function exampleLine(ex: TokenizedExample): string {
  return `{"input_ids":[${ex.inputIds.join(",")}],"labels":[${ex.labels.join(",")}]}\n`;
}

/** Tokenizes `options.data` into `options.out`. Throws {@link DataError} on a bad line. */
export async function pretokenize(options: PretokenizeOptions): Promise<PretokenizeResult> {
  const { model, data, out, seqLen } = options;
  if (seqLen !== null && (!Number.isInteger(seqLen) || seqLen < 2)) {
    throw new RangeError(`seqLen ${seqLen}: expected an integer >= 2`);
  }
  const tok = await openModelTokenizer(model);
  if (!tok) throw new UsageError("--model", `${model}: no tokenizer.json`);
  const vocabSize = await vocabSizeOf(model, tok);
  const result: PretokenizeResult = { examples: 0, tokens: 0, truncated: 0, vocabSize };
  const encoder = new TextEncoder();
  // Lines are produced while the file is written: memory stays at one chunk, not the dataset.
  async function* chunks(): AsyncGenerator<Uint8Array> {
    // Opened here, once the output file exists: jsonlLines closes it however the loop ends.
    const bytes = (await Deno.open(data, { read: true })).readable;
    let pending = "";
    const read = { maxLineBytes: options.maxLineBytes };
    for await (let ex of readExampleLines(bytes, data, tok, vocabSize, read)) {
      if (seqLen !== null && ex.inputIds.length > seqLen) {
        // The trainer's rule (buildRows in src/data/dataset.ts): keep the first seqLen tokens.
        // Dropping rows with nothing left to train on is a packing decision: not made here.
        ex = { inputIds: ex.inputIds.subarray(0, seqLen), labels: ex.labels.subarray(0, seqLen) };
        result.truncated++;
      }
      result.examples++;
      result.tokens += ex.inputIds.length;
      pending += exampleLine(ex);
      if (pending.length >= 1 << 20) {
        yield encoder.encode(pending);
        pending = "";
      }
    }
    yield encoder.encode(pending);
  }
  await writeFileAtomic(out, chunks());
  return result;
}

/** Where the tool writes (tests capture it). */
export interface PretokenizeIo {
  out: (text: string) => void;
  err: (text: string) => void;
}

const defaultIo: PretokenizeIo = {
  out: (t) => void Deno.stdout.writeSync(new TextEncoder().encode(t)),
  err: (t) => void Deno.stderr.writeSync(new TextEncoder().encode(t)),
};

/** Parses the flags. Throws {@link UsageError}; null means --help. */
export async function parsePretokenizeArgs(argv: string[]): Promise<PretokenizeOptions | null> {
  const flags = parseToolFlags(argv, {
    strings: ["model", "data", "out", "seq-len", "max-line-bytes"],
  });
  if (flags.help) return null;
  const model = flags.need("model");
  const data = flags.need("data");
  const out = flags.need("out");
  const seqLen = flags.integer("seq-len", 2);
  const maxLineBytes = flags.integer("max-line-bytes", 1) ?? undefined;
  // Missing inputs are usage errors, found before the tokenizer is built.
  if (!(await Deno.stat(data).then((s) => s.isFile, () => false))) {
    throw new UsageError("--data", `${data}: no such file`);
  }
  if (!isUrl(model) && !(await Deno.stat(model).then((s) => s.isDirectory, () => false))) {
    throw new UsageError("--model", `${model}: no such directory`);
  }
  const slash = out.lastIndexOf("/");
  const outDir = slash < 0 ? "." : slash === 0 ? "/" : out.slice(0, slash);
  if (!(await Deno.stat(outDir).then((s) => s.isDirectory, () => false))) {
    throw new UsageError("--out", `${outDir}: no such directory`);
  }
  // The output replaces its file: it must never be the input it is read from.
  if (await canonicalPath(out) === await canonicalPath(data)) {
    throw new UsageError("--out", `${out} is the --data file; name a new file`);
  }
  if (!isUrl(model) && (await canonicalPath(out)).startsWith(await canonicalPath(model) + "/")) {
    throw new UsageError("--out", `${out} is inside the --model folder; name a file elsewhere`);
  }
  return { model, data, out, seqLen, maxLineBytes };
}

/** The command. Returns the exit status: 0, 1 (bad data or model) or 2 (usage). */
export async function main(argv: string[], io: PretokenizeIo = defaultIo): Promise<number> {
  try {
    const options = await parsePretokenizeArgs(argv);
    if (options === null) {
      io.out(HELP);
      return 0;
    }
    const t0 = performance.now();
    const r = await pretokenize(options);
    io.out(
      `${options.out}: ${r.examples} examples, ${r.tokens} tokens` +
        (r.truncated ? `, ${r.truncated} cut at --seq-len ${options.seqLen}` : "") +
        ` (${((performance.now() - t0) / 1000).toFixed(1)} s)\n`,
    );
    return 0;
  } catch (e) {
    if (e instanceof UsageError) {
      io.err(`error: ${e.message}\n`);
      return 2;
    }
    // Errors about the input (bad line, config, missing or unreadable file, a tokenizer larger
    // than the model) name the file and the problem: one line, as does anything unexpected.
    if (e instanceof DataError || e instanceof FileWriteError || isInputError(e)) {
      io.err(`error: ${(e as Error).message}\n`);
      return 1;
    }
    io.err(unexpectedErrorText(e, "slimtune pretokenize"));
    return 1;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
