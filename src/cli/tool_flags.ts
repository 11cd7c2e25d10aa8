/**
 * The flags of a tool under tools/: parsed strictly (no positionals; `-h`/`--help` always), every
 * mistake a {@link UsageError} naming the flag, and the value readers the tools share.
 *
 * @example
 * ```ts
 * import { parseToolFlags } from "./tool_flags.ts";
 * const flags = parseToolFlags(["--out", "a.gguf", "--seq-len", "64"], {
 *   strings: ["out", "model", "seq-len"],
 * });
 * console.log(flags.need("out"), flags.string("model"), flags.integer("seq-len", 2)); // a.gguf null 64
 * ```
 */
import { parseFlags } from "../runtime/flags.ts";
import { UsageError, usageErrorFromParseArgs } from "./usage.ts";

/** The parsed flags; every reader throws {@link UsageError} `--flag: reason`. */
export interface ToolFlags {
  /** `-h` or `--help` was given. */
  readonly help: boolean;
  /** A string flag's value, or null when it is absent; an empty value: "must not be empty". */
  string(flag: string): string | null;
  /** A string flag that must be given with a value: "required" when absent or empty. */
  need(flag: string): string;
  /** A boolean flag: true when given. */
  boolean(flag: string): boolean;
  /**
   * A whole-number flag of at least `min` (digits only), or null when it is absent:
   * `expected an integer >= min, got "value"` otherwise.
   */
  integer(flag: string, min: number): number | null;
}

/** The flags a tool takes, by name without the dashes (`help` is always added). */
export interface ToolFlagNames {
  strings: readonly string[];
  booleans?: readonly string[];
}

/** Parses `argv`; a bad command line throws {@link UsageError} (`ARG: unexpected argument (see --help)`, ...). */
export function parseToolFlags(argv: readonly string[], names: ToolFlagNames): ToolFlags {
  const options: Parameters<typeof parseFlags>[1] = {};
  for (const s of names.strings) options[s] = { type: "string" };
  for (const b of names.booleans ?? []) options[b] = { type: "boolean" };
  options.help = { type: "boolean", short: "h" };
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseFlags(argv, options));
  } catch (e) {
    throw usageErrorFromParseArgs(e, "see --help");
  }
  const known = (flag: string, type: "string" | "boolean") => {
    if (options[flag]?.type !== type) {
      throw new RangeError(`no ${type} flag --${flag} was declared`);
    }
  };
  const string = (flag: string): string | null => {
    known(flag, "string");
    const v = values[flag];
    if (v === "") throw new UsageError(`--${flag}`, "must not be empty");
    return typeof v === "string" ? v : null;
  };
  return {
    help: values.help === true,
    string,
    need(flag) {
      known(flag, "string");
      const v = values[flag];
      if (typeof v !== "string" || v === "") throw new UsageError(`--${flag}`, "required");
      return v;
    },
    boolean(flag) {
      known(flag, "boolean");
      return values[flag] === true;
    },
    integer(flag, min) {
      known(flag, "string");
      const v = values[flag];
      if (typeof v !== "string") return null;
      const n = /^\d+$/.test(v) ? Number(v) : NaN;
      if (!Number.isSafeInteger(n) || n < min) {
        throw new UsageError(`--${flag}`, `expected an integer >= ${min}, got "${v}"`);
      }
      return n;
    },
  };
}
