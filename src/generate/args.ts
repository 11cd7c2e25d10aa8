/**
 * Command-line flags of `generate.ts`, parsed with `parseFlags` (`runtime/flags.ts`). Bad flags
 * throw the {@link UsageError} every command line here shares (`error: --flag: reason`, exit status 2).
 *
 * @example
 * ```ts
 * import { parseGenerateArgs } from "./args.ts";
 * const { args } = parseGenerateArgs(["--prompt", "Once upon a time", "--temperature", "0"]);
 * console.log(args.maxNewTokens, args.temperature); // 128 0
 * ```
 */
import { parseFlags } from "../runtime/flags.ts";
import {
  parseIntFlag,
  parseNumberFlag,
  UsageError,
  usageErrorFromParseArgs,
} from "../cli/usage.ts";

/** Everything `generate.ts` can be told. */
export interface GenerateArgs {
  model: string | null;
  /** Adapter directory; `"none"` = explicitly no adapter (also for the demo). */
  adapter: string | null;
  prompt: string | null;
  /** A pre-tokenized prompt: ids `1,2,3`, or a file (a JSON array, or `{"input_ids": [...]}`). */
  inputIds: string | null;
  chat: string | null;
  /** Multi-turn chat: user turns from stdin, one per line (`chat`, if given, is the first). */
  interactive: boolean;
  system: string | null;
  /** Renders the chat template with `enable_thinking` false (Qwen3: no reasoning). */
  noThinking: boolean;
  /** KV-cache positions of an interactive chat (conversation + reply). */
  maxContext: number;
  maxNewTokens: number;
  temperature: number;
  topP: number;
  seed: number;
  /** Kernel threads; 0 = all cores. */
  threads: number;
  quant: "int4" | "none";
  weights: "resident" | "streamed";
  cacheDir: string | null;
  quiet: boolean;
}

interface Spec {
  flag: string;
  key: keyof GenerateArgs;
  type: "string" | "int" | "number" | "enum" | "bool";
  default: GenerateArgs[keyof GenerateArgs];
  meta?: string;
  choices?: readonly string[];
  min?: number;
  max?: number;
  /** `min` itself is not allowed. */
  exclusiveMin?: boolean;
  help: string;
}

const FLAGS: readonly Spec[] = [
  {
    flag: "model",
    key: "model",
    type: "string",
    default: null,
    meta: "PATH|URL",
    help: "HF model dir or URL (config.json, *.safetensors, tokenizer.json); " +
      "omitted: the bundled demo model (RANDOM weights)",
  },
  {
    flag: "adapter",
    key: "adapter",
    type: "string",
    default: null,
    meta: "DIR|none",
    help: "PEFT LoRA adapter dir, applied unmerged (demo: out/demo-adapter when it exists)",
  },
  {
    flag: "prompt",
    key: "prompt",
    type: "string",
    default: null,
    meta: "TEXT",
    help: "plain text to continue",
  },
  {
    flag: "input-ids",
    key: "inputIds",
    type: "string",
    default: null,
    meta: "IDS|FILE",
    help: "a pre-tokenized prompt to continue: comma-separated token ids, or a file holding a " +
      'JSON array of ids or a pretokenize line {"input_ids": [...]} (its first line); needs no ' +
      "tokenizer (then the new ids are printed)",
  },
  {
    flag: "chat",
    key: "chat",
    type: "string",
    default: null,
    meta: "TEXT",
    help: "a user message, rendered with the model's chat template (assistant reply follows)",
  },
  {
    flag: "interactive",
    key: "interactive",
    type: "bool",
    default: false,
    help: "multi-turn chat: read user messages from stdin, one per line, and answer each; an " +
      "empty line, /exit or end of input ends it (--chat TEXT, if given, is the first message)",
  },
  {
    flag: "system",
    key: "system",
    type: "string",
    default: null,
    meta: "TEXT",
    help: "system message for --chat / --interactive",
  },
  {
    flag: "no-thinking",
    key: "noThinking",
    type: "bool",
    default: false,
    help: "render the chat template with enable_thinking=false (Qwen3: the reply opens with an " +
      "empty <think></think> and skips its reasoning; default: the template's own, thinking on)",
  },
  {
    flag: "max-new-tokens",
    key: "maxNewTokens",
    type: "int",
    default: 128,
    min: 1,
    meta: "N",
    help: "most tokens to generate (per reply with --interactive)",
  },
  {
    flag: "max-context",
    key: "maxContext",
    type: "int",
    default: 4096,
    min: 2,
    meta: "N",
    help: "--interactive: KV-cache positions for the conversation and the reply being " +
      "written; the oldest exchanges are dropped to fit (the default is lowered to the " +
      "model's max_position_embeddings when that is smaller)",
  },
  {
    flag: "temperature",
    key: "temperature",
    type: "number",
    default: 0.7,
    min: 0,
    meta: "T",
    help: "sampling temperature (0 = greedy)",
  },
  {
    flag: "top-p",
    key: "topP",
    type: "number",
    default: 0.9,
    min: 0,
    max: 1,
    exclusiveMin: true,
    meta: "P",
    help: "nucleus sampling: smallest set of tokens with probability >= P",
  },
  {
    flag: "seed",
    key: "seed",
    type: "int",
    default: 0,
    min: 0,
    max: 4294967295,
    meta: "S",
    help: "sampling seed",
  },
  {
    flag: "threads",
    key: "threads",
    type: "int",
    default: 0,
    min: 0,
    max: 256,
    meta: "N",
    help: "kernel threads; 0 = all cores",
  },
  {
    flag: "quant",
    key: "quant",
    type: "enum",
    choices: ["int4", "none"],
    default: "int4",
    help: "base weights: 4-bit (MLX affine, group 64) or f32",
  },
  {
    flag: "weights",
    key: "weights",
    type: "enum",
    choices: ["resident", "streamed"],
    default: "resident",
    help: "keep all base weights in memory, or stream one block at a time from a cache file",
  },
  {
    flag: "cache-dir",
    key: "cacheDir",
    type: "string",
    default: null,
    meta: "DIR",
    help: "where --weights streamed keeps its int4 cache (default: next to the model) and the " +
      "tokenizer its snapshot (default: the user's cache folder)",
  },
  {
    flag: "quiet",
    key: "quiet",
    type: "bool",
    default: false,
    help: "print only the generated text",
  },
];

function parseValue(s: Spec, raw: string): unknown {
  const flag = `--${s.flag}`;
  switch (s.type) {
    case "bool":
      return true;
    case "string":
      if (raw === "") throw new UsageError(flag, "must not be empty");
      return raw;
    case "enum":
      if (!s.choices!.includes(raw)) {
        throw new UsageError(flag, `must be one of ${s.choices!.join("|")}, got "${raw}"`);
      }
      return raw;
    case "int":
      return parseIntFlag(flag, raw, s.min!, s.max);
    case "number":
      return parseNumberFlag(flag, raw, s.min!, s.exclusiveMin ?? false, s.max);
  }
}

/** Parses `argv` (without the program name). Throws {@link UsageError}. */
export function parseGenerateArgs(
  argv: string[],
): { args: GenerateArgs; given: Set<keyof GenerateArgs>; help: boolean } {
  const options: Record<string, { type: "string" | "boolean"; short?: string }> = {
    help: { type: "boolean", short: "h" },
  };
  for (const f of FLAGS) options[f.flag] = { type: f.type === "bool" ? "boolean" : "string" };
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseFlags(argv, options));
  } catch (e) {
    throw usageErrorFromParseArgs(e, "every option is a --flag; quote the text");
  }
  const args: Record<string, unknown> = {};
  const given = new Set<keyof GenerateArgs>();
  for (const f of FLAGS) {
    const v = values[f.flag];
    args[f.key] = v === undefined ? f.default : parseValue(f, typeof v === "string" ? v : "");
    if (v !== undefined) given.add(f.key);
  }
  const a = args as unknown as GenerateArgs;
  const help = values.help === true;
  if (!help) {
    if (a.prompt !== null && a.chat !== null) {
      throw new UsageError("--chat", "give either --prompt or --chat, not both");
    }
    if (a.inputIds !== null && (a.prompt !== null || a.chat !== null || a.interactive)) {
      throw new UsageError(
        "--input-ids",
        "give one of --input-ids, --prompt, --chat, --interactive",
      );
    }
    if (a.prompt !== null && a.interactive) {
      throw new UsageError("--interactive", "is a chat: give --chat TEXT (optional), not --prompt");
    }
    if (a.prompt === null && a.chat === null && !a.interactive && a.inputIds === null) {
      throw new UsageError(
        "--prompt",
        "required: --prompt TEXT (plain text), --chat TEXT, --input-ids IDS or --interactive",
      );
    }
    if (a.system !== null && a.chat === null && !a.interactive) {
      throw new UsageError("--system", "only applies with --chat or --interactive");
    }
    if (a.noThinking && a.chat === null && !a.interactive) {
      throw new UsageError("--no-thinking", "only applies with --chat or --interactive");
    }
    if (values["max-context"] !== undefined && !a.interactive) {
      throw new UsageError("--max-context", "only applies with --interactive");
    }
    if (a.interactive && a.maxNewTokens >= a.maxContext) {
      throw new UsageError(
        "--max-context",
        `${a.maxContext} positions cannot hold a prompt and --max-new-tokens ${a.maxNewTokens}`,
      );
    }
  }
  return { args: a, given, help };
}

/** `--help` text, from the same table the parser uses. */
export function generateHelpText(): string {
  const left = (f: Spec) => {
    const meta = f.type === "enum" ? f.choices!.join("|") : f.meta;
    return `  --${f.flag}${meta ? " " + meta : ""}`;
  };
  const width = Math.max(...FLAGS.map((f) => left(f).length)) + 2;
  const lines = [
    "slimtune generate: sample text from a model (4-bit base weights), with or without a LoRA",
    "adapter. The text streams to stdout as it is decoded; notes and timings go to stderr.",
    "",
    "usage: deno run -A generate.ts [--model DIR] [--adapter DIR]",
    "           (--prompt TEXT | --input-ids IDS|FILE | --chat TEXT | --interactive [--chat TEXT])",
    "           [options]",
    "",
    "options:",
  ];
  for (const f of FLAGS) {
    const d = f.default === null || f.type === "bool" ? "" : ` (default ${f.default})`;
    lines.push(left(f).padEnd(width) + f.help + d);
  }
  lines.push("  -h, --help".padEnd(width) + "print this help");
  lines.push(
    "",
    "examples:",
    '  deno run -A generate.ts --prompt "Once upon a time" --max-new-tokens 20',
    "  deno run -A generate.ts --model ./Qwen2.5-0.5B-Instruct --adapter out/qwen-adapter \\",
    '      --chat "Write a haiku about memory." --temperature 0',
    "  deno run -A generate.ts --model DIR --input-ids 151644,872,198 --temperature 0",
    "  printf 'Hi!\\nTell me more.\\n' | deno run -A generate.ts --interactive --max-new-tokens 32",
  );
  return lines.join("\n") + "\n";
}
