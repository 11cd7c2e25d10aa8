/**
 * The `generate.ts` command: opens the model (or builds the bundled demo model), its tokenizer
 * and an optional PEFT adapter, encodes the prompt (plain, or a chat turn through the model's chat
 * template with the generation prompt), then streams the sampled continuation to `out`. With
 * `--interactive` it holds a conversation instead: user messages line by line from `lines`
 * (stdin), each reply streamed to `out` and followed by a line break, the KV cache reused across
 * turns ({@link ChatSession}). Notes and timings go to `err`. Returns the exit status (0 done,
 * 1 failed, 2 bad command line) instead of exiting, so tests can call it in-process.
 */
import { type ChatMessage, renderChat } from "../data/chat.ts";
import type { TextTokenizer } from "../data/tokenizer.ts";
import { bundledQwenTokenizerDir, loadTokenizerDir } from "./tokenizer.ts";
import { openModelDir } from "./model_source.ts";
import { loadKernels } from "../kernels/wasm.ts";
import type { WeightStore } from "../model/weights.ts";
import { BYTES_PER_MB } from "../runtime/memory.ts";
import { createDemoStore, DEMO_BASE_MODEL } from "../model/demo_model.ts";
import { ADAPTER_CONFIG_FILE, readAdapterDir } from "./peft_adapter.ts";
import { isInputError } from "../io/input_error.ts";
import { unexpectedErrorText } from "../runtime/unexpected_error.ts";
import { defaultCacheDir } from "./cache_dir.ts";
import { checkTokenizerFits, isUrl, openModelTokenizer } from "./model_location.ts";
import { UsageError } from "../cli/usage.ts";
import { checkEncodedIds } from "../data/example.ts";
import { type GenerateArgs, generateHelpText, parseGenerateArgs } from "../generate/args.ts";
import {
  ChatContextError,
  ChatSession,
  type ChatTurn,
  ChatVocabularyError,
  readLines,
} from "../generate/chat.ts";
import { Decoder, type DecoderAdapter } from "../generate/decoder.ts";
import { generate } from "../generate/loop.ts";
import { TextStreamer } from "../generate/text_stream.ts";

const encoder = new TextEncoder();

/** Where the CLI writes (tests capture it) and, for `--interactive`, reads. */
export interface GenerateIo {
  out: (text: string) => void;
  err: (text: string) => void;
  /** The user's messages for `--interactive`, one per item (default: the lines of stdin). */
  lines?: AsyncIterable<string>;
}

const defaultIo: GenerateIo = {
  out: (t) => void Deno.stdout.writeSync(encoder.encode(t)),
  err: (t) => void Deno.stderr.writeSync(encoder.encode(t)),
};

/** Settings tests may change. */
export interface GenerateEnv {
  /** The adapter the demo uses when --adapter is not given and it exists. */
  demoAdapterDir: string;
}

/** Where `deno run -A train.ts` (the demo) writes its adapter. */
export const DEMO_ADAPTER_DIR = "out/demo-adapter";

/** A failure with a message for the user (exit status 1). */
class CliError extends Error {}

async function isFile(path: string): Promise<boolean> {
  return await Deno.stat(path).then((s) => s.isFile, () => false);
}

/** Every id that ends a reply: config.json's, the tokenizer's, generation_config.json's. */
async function stopIds(
  args: GenerateArgs,
  store: WeightStore,
  tok: TextTokenizer | null,
): Promise<number[]> {
  const ids = new Set<number>();
  const add = (v: unknown) => {
    for (const x of Array.isArray(v) ? v : [v]) if (Number.isInteger(x)) ids.add(x as number);
  };
  add(store.config.eosTokenId);
  add(tok?.eosTokenId);
  if (args.model !== null && !isUrl(args.model)) {
    const path = `${args.model}/generation_config.json`;
    if (await isFile(path)) {
      try {
        add(JSON.parse(await Deno.readTextFile(path)).eos_token_id);
      } catch (e) {
        throw new CliError(`${path}: not valid JSON (${(e as Error).message})`);
      }
    }
  }
  return [...ids];
}

/** Chat modes need the tokenizer's chat template: a usage error (before any weights load). */
function checkChatTemplate(args: GenerateArgs, tok: TextTokenizer): void {
  if (tok.chatTemplate !== null) return;
  if (args.interactive) {
    throw new UsageError("--interactive", "the model's tokenizer has no chat_template");
  }
  if (args.chat !== null) {
    throw new UsageError("--chat", "the model's tokenizer has no chat_template (use --prompt)");
  }
}

/** The prompt's token ids: `--prompt` as plain text (with BOS where the tokenizer adds one), or
 * `--chat` rendered by the chat template with the generation prompt (the template adds BOS). */
function promptIds(args: GenerateArgs, tok: TextTokenizer, vocabSize: number): number[] {
  const fits = (flag: string, ids: number[]) => {
    try {
      checkEncodedIds(ids, tok, vocabSize);
    } catch (e) {
      throw new UsageError(flag, (e as Error).message);
    }
    return ids;
  };
  if (args.chat !== null) {
    const messages: ChatMessage[] = [];
    if (args.system !== null) messages.push({ role: "system", content: args.system });
    messages.push({ role: "user", content: args.chat });
    const render = { enableThinking: args.noThinking ? false : undefined };
    const ids = tok.encode(renderChat(tok, messages, true, render), false);
    if (ids.length === 0) throw new UsageError("--chat", "the rendered chat has no tokens");
    return fits("--chat", ids);
  }
  const ids = tok.encode(args.prompt!, true);
  if (ids.length === 0) throw new UsageError("--prompt", "encodes to no tokens");
  return fits("--prompt", ids);
}

/**
 * The ids of `--input-ids`: `1,2,3` (commas and/or spaces), or a file holding a JSON array of
 * ids or a JSON object with `input_ids` (the first line of a pretokenize file). Each id must be a
 * row of the model's `vocabSize` embedding.
 */
export async function readInputIds(value: string, vocabSize: number): Promise<number[]> {
  let ids: unknown;
  let where = "";
  if (/^[\d\s,]+$/.test(value)) {
    ids = value.split(/[\s,]+/).filter((s) => s !== "").map(Number);
  } else {
    where = `${value}: `;
    let text: string;
    try {
      text = await Deno.readTextFile(value);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) {
        throw new UsageError("--input-ids", `${value}: no such file (and not a list of ids)`);
      }
      throw e;
    }
    const first = text.trimStart().startsWith("[") ? text : text.split("\n")[0];
    try {
      const v = JSON.parse(first);
      ids = Array.isArray(v) ? v : (v as { input_ids?: unknown })?.input_ids;
    } catch (e) {
      throw new UsageError("--input-ids", `${value}: not JSON (${(e as Error).message})`);
    }
  }
  if (!Array.isArray(ids) || ids.length === 0) {
    throw new UsageError("--input-ids", `${where}expected a non-empty list of token ids`);
  }
  for (const id of ids) {
    if (!Number.isInteger(id) || id < 0 || id >= vocabSize) {
      throw new UsageError(
        "--input-ids",
        `${where}${JSON.stringify(id)} is not a token id of the model (0 .. ${vocabSize - 1})`,
      );
    }
  }
  return ids as number[];
}

/** The CLI. Returns the exit status. */
export async function main(
  argv: string[],
  io: GenerateIo = defaultIo,
  env: GenerateEnv = { demoAdapterDir: DEMO_ADAPTER_DIR },
): Promise<number> {
  try {
    const { args, given, help } = parseGenerateArgs(argv);
    if (help) {
      io.out(generateHelpText());
      return 0;
    }
    return await run(args, given, io, env);
  } catch (e) {
    if (e instanceof UsageError) {
      io.err(`error: ${e.message}\n`);
      return 2;
    }
    if (e instanceof CliError) {
      io.err(`error: ${e.message}\n`);
      return 1;
    }
    if (isInputError(e)) {
      io.err(`error: ${(e as Error).message}\n`);
      return 1;
    }
    io.err("\n" + unexpectedErrorText(e, "slimtune generate"));
    return 1;
  }
}

async function run(
  args: GenerateArgs,
  given: ReadonlySet<keyof GenerateArgs>,
  io: GenerateIo,
  env: GenerateEnv,
): Promise<number> {
  const demo = args.model === null;
  const note = (t: string) => {
    if (!args.quiet) io.err(t + "\n");
  };
  if (!demo && !isUrl(args.model!)) {
    const isDir = await Deno.stat(args.model!).then((s) => s.isDirectory, () => false);
    if (!isDir) throw new UsageError("--model", `${args.model}: no such directory`);
  }
  if (args.adapter !== null && args.adapter !== "none") {
    if (!(await isFile(`${args.adapter}/${ADAPTER_CONFIG_FILE}`))) {
      throw new UsageError("--adapter", `${args.adapter}/${ADAPTER_CONFIG_FILE}: not found`);
    }
  }

  // --threads 0 (the default): all cores. Workers end with this function (using).
  using loaded = await loadKernels({ threads: args.threads || navigator.hardwareConcurrency || 1 });
  const { kernels, arena, variant } = loaded;
  const t0 = performance.now();
  let store: WeightStore;
  let tok: TextTokenizer | null;
  if (demo) {
    // Always said, even with --quiet: the demo's text means nothing.
    io.err(
      "note: no --model given, so this samples the bundled demo model, whose weights are RANDOM " +
        "(it knows no language: expect gibberish). Pass --model DIR for a real model.\n",
    );
    if (args.weights === "streamed") note("note: the demo model is built in memory (resident)");
    tok = await loadTokenizerDir(bundledQwenTokenizerDir(), {
      cacheDir: args.cacheDir ?? defaultCacheDir(),
    });
    checkChatTemplate(args, tok);
    store = createDemoStore(kernels, arena, args.quant);
  } else {
    const model = args.model!;
    // A tokenizer snapshot in the cache folder is read instead of parsing tokenizer.json.
    tok = await openModelTokenizer(model, args.cacheDir ?? defaultCacheDir());
    if (tok === null && args.inputIds === null) {
      throw new CliError(
        `${model}: no tokenizer.json (generate needs the model's tokenizer, except with --input-ids)`,
      );
    }
    if (tok) checkChatTemplate(args, tok);
    store = await openModelDir({
      source: model,
      quant: args.quant,
      weights: args.weights,
      cacheDir: args.cacheDir ?? undefined,
      kernels,
      arena,
    });
  }
  let decoder: Decoder | null = null;
  try {
    const config = store.config;
    if (tok) {
      try {
        checkTokenizerFits(args.model ?? DEMO_BASE_MODEL, tok, config.vocabSize);
      } catch (e) {
        throw new CliError((e as Error).message);
      }
    }
    // The adapter: --adapter DIR, or the demo's own adapter when training wrote one.
    let adapterDir = args.adapter === "none" ? null : args.adapter;
    if (adapterDir === null && demo && args.adapter !== "none") {
      if (await isFile(`${env.demoAdapterDir}/${ADAPTER_CONFIG_FILE}`)) {
        adapterDir = env.demoAdapterDir;
      }
    }
    let adapter: DecoderAdapter | null = null;
    if (adapterDir !== null) {
      const { info, tensors } = await readAdapterDir(adapterDir, config).catch((e) => {
        const hint = args.adapter === null ? " (pass --adapter none to run without it)" : "";
        throw new UsageError("--adapter", (e as Error).message + hint);
      });
      adapter = { r: info.r, alpha: info.alpha, targets: info.targets, tensors };
    }
    let prompt: number[] = [];
    let maxLen: number;
    if (args.interactive) {
      if (given.has("maxContext") && args.maxContext > config.maxPositionEmbeddings) {
        throw new UsageError(
          "--max-context",
          `${args.maxContext} is above the model's max_position_embeddings ` +
            `${config.maxPositionEmbeddings}`,
        );
      }
      maxLen = Math.min(args.maxContext, config.maxPositionEmbeddings);
      if (args.maxNewTokens >= maxLen) {
        throw new UsageError(
          "--max-new-tokens",
          `${args.maxNewTokens} leaves no room for a prompt in the model's ` +
            `max_position_embeddings ${config.maxPositionEmbeddings}`,
        );
      }
    } else {
      prompt = args.inputIds !== null
        ? await readInputIds(args.inputIds, config.vocabSize)
        : promptIds(args, tok!, config.vocabSize);
      maxLen = prompt.length + args.maxNewTokens;
      if (maxLen - 1 > config.maxPositionEmbeddings) {
        throw new UsageError(
          "--max-new-tokens",
          `the prompt's ${prompt.length} tokens + ${args.maxNewTokens} exceed the model's ` +
            `max_position_embeddings ${config.maxPositionEmbeddings}`,
        );
      }
    }
    decoder = Decoder.create({ store, kernels, arena, maxLen, adapter });
    note(
      `model: ${demo ? DEMO_BASE_MODEL : args.model} (${config.architecture}, ` +
        `${config.numLayers} layers, hidden ${config.hiddenSize}), ${store.quant} ` +
        `${demo ? "resident" : args.weights}, kernels ${variant} x ${loaded.threads} threads, ` +
        `ready in ` +
        `${((performance.now() - t0) / 1000).toFixed(1)} s`,
    );
    note(
      adapter
        ? `adapter: ${adapterDir} (r ${adapter.r}, alpha ${adapter.alpha}, ` +
          `${adapter.targets.join(",")})`
        : "adapter: none (base model)",
    );
    note(
      `sampling: ${
        args.temperature === 0 ? "greedy" : `temperature ${args.temperature}, top-p ${args.topP}`
      }, seed ${args.seed}, at most ${args.maxNewTokens} new tokens` +
        (args.interactive
          ? ` per reply; KV cache ${maxLen} positions ` +
            `(${(decoder.cache.bytes / BYTES_PER_MB).toFixed(1)} MB)`
          : `; prompt ${prompt.length} tokens`) +
        "\n",
    );
    const options = {
      maxNewTokens: args.maxNewTokens,
      temperature: args.temperature,
      topP: args.topP,
      seed: args.seed,
      stopIds: await stopIds(args, store, tok),
    };
    if (args.interactive) {
      await chat(
        args,
        io,
        tok!,
        new ChatSession(decoder, tok!, {
          ...options,
          system: args.system,
          enableThinking: args.noThinking ? false : undefined,
        }),
      );
      note(`arena high-water ${(arena.highWater / BYTES_PER_MB).toFixed(1)} MB`);
      return 0;
    }
    // Without a tokenizer (a pre-tokenized prompt), the new ids are the output.
    const streamer = tok ? new TextStreamer(tok) : null;
    let first = true;
    const r = await generate(decoder, prompt, options, (id) => {
      const text = streamer ? streamer.push(id) : `${first ? "" : " "}${id}`;
      first = false;
      if (text) io.out(text);
    });
    io.out((streamer?.flush() ?? "") + "\n");
    const perToken = r.ids.length > 1 ? r.decodeMs / (r.ids.length - 1) : 0;
    note(
      `\n${r.ids.length} tokens (${r.stop === "eos" ? "end of sequence" : "token limit"}); ` +
        `prompt ${r.promptTokens} tokens in ${r.prefillMs.toFixed(0)} ms; ` +
        (perToken > 0 ? `${(1000 / perToken).toFixed(1)} tokens/s; ` : "") +
        `arena high-water ${(arena.highWater / BYTES_PER_MB).toFixed(1)} MB`,
    );
    return 0;
  } finally {
    decoder?.dispose();
    await store.close();
  }
}

/**
 * The `--interactive` loop: `--chat TEXT` (if given) then each line of `io.lines` (stdin) is a
 * user message; an empty line, `/exit` or the end of the input ends the chat. Each reply streams
 * to `out` and ends with a line break; a per-turn note (tokens reused from the KV cache, speed)
 * goes to `err`.
 */
async function chat(
  args: GenerateArgs,
  io: GenerateIo,
  tok: TextTokenizer,
  session: ChatSession,
): Promise<void> {
  const note = (t: string) => {
    if (!args.quiet) io.err(t + "\n");
  };
  // A person at a terminal gets a prompt; a pipe does not need one.
  const terminal = io.lines === undefined && Deno.stdin.isTerminal();
  const lines = (io.lines ?? readLines(Deno.stdin.readable))[Symbol.asyncIterator]();
  note("chat: one message per line; an empty line, /exit or end of input ends the chat");
  let first = args.chat;
  for (let turn = 1;; turn++) {
    let text: string;
    if (first !== null) {
      text = first;
      first = null;
    } else {
      if (terminal) io.err("> ");
      const next = await lines.next();
      if (next.done) break;
      text = next.value;
    }
    if (text.trim() === "" || text.trim() === "/exit") break;
    const streamer = new TextStreamer(tok);
    let r: ChatTurn;
    try {
      r = await session.turn(text, (id) => {
        const piece = streamer.push(id);
        if (piece) io.out(piece);
      });
    } catch (e) {
      if (!(e instanceof ChatContextError)) throw e;
      // Not an error of the run: the chat goes on with the next message.
      io.err(`skipped: ${e instanceof ChatVocabularyError ? "" : "--max-context: "}${e.message}\n`);
      continue;
    }
    io.out(streamer.flush() + "\n");
    const perToken = r.ids.length > 1 ? r.decodeMs / (r.ids.length - 1) : 0;
    note(
      `[turn ${turn}: prompt ${r.promptTokens} tokens, ${r.reusedTokens} reused from the KV ` +
        `cache, ${r.prefilledTokens} prefilled in ${r.prefillMs.toFixed(0)} ms` +
        (r.droppedExchanges > 0
          ? ` (dropped the ${r.droppedExchanges} oldest exchange(s) to fit --max-context)`
          : "") +
        `; ${r.ids.length} tokens (${r.stop === "eos" ? "end of turn" : "token limit"})` +
        (perToken > 0 ? `, ${(1000 / perToken).toFixed(1)} tokens/s` : "") + "]",
    );
  }
  await lines.return?.();
}
