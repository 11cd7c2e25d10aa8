/**
 * Command-line flags, parsed strictly: `--name value`, `--name=value`, boolean `--name`, and a
 * one-letter `-x` where an option names one; no positionals. It takes the options and returns the values as `node:util`'s
 * `parseArgs` does with `strict: true, allowPositionals: false`, and its errors carry the same
 * `code`s, so callers map them to one-line messages the same way. It exists because importing
 * `node:util` starts Deno's Node compatibility layer, process memory that every run of the CLIs
 * would pay for one function.
 *
 * @example
 * ```ts
 * import { parseFlags } from "./flags.ts";
 * const { values } = parseFlags(["--rank", "16", "--resume"], {
 *   rank: { type: "string" },
 *   resume: { type: "boolean" },
 * });
 * console.log(values.rank, values.resume); // "16" true
 * ```
 */

/** One flag: a string value or a boolean switch. */
export interface FlagOption {
  type: "string" | "boolean";
  /** A one-letter alias, written `-x`. */
  short?: string;
}

/** An error in the flags; `code` names the kind, as `node:util` parseArgs does. */
export class FlagParseError extends TypeError {
  constructor(
    readonly code:
      | "ERR_PARSE_ARGS_UNKNOWN_OPTION"
      | "ERR_PARSE_ARGS_INVALID_OPTION_VALUE"
      | "ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL",
    message: string,
  ) {
    super(message);
    this.name = "FlagParseError";
  }
}

/** Parses `args` against `options`; a flag given twice keeps its last value. */
export function parseFlags(
  args: readonly string[],
  options: Record<string, FlagOption>,
): { values: Record<string, string | boolean | undefined> } {
  const values: Record<string, string | boolean | undefined> = {};
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "--") {
      if (i + 1 < args.length) throw unexpected(args[i + 1]);
      break;
    }
    if (!arg.startsWith("-") || arg === "-") throw unexpected(arg);
    let eq = arg.indexOf("=");
    let name = arg.slice(2, eq < 0 ? undefined : eq);
    if (!arg.startsWith("--")) {
      const long = arg.length === 2
        ? Object.keys(options).find((k) => options[k].short === arg[1])
        : undefined;
      if (long === undefined) {
        throw new FlagParseError("ERR_PARSE_ARGS_UNKNOWN_OPTION", `Unknown option '${arg}'`);
      }
      name = long;
      eq = -1;
    }
    const option = Object.hasOwn(options, name) ? options[name] : undefined;
    if (!option) {
      throw new FlagParseError("ERR_PARSE_ARGS_UNKNOWN_OPTION", `Unknown option '--${name}'`);
    }
    if (option.type === "boolean") {
      if (eq >= 0) {
        throw new FlagParseError(
          "ERR_PARSE_ARGS_INVALID_OPTION_VALUE",
          `Option '--${name}' does not take an argument`,
        );
      }
      values[name] = true;
    } else if (eq >= 0) {
      values[name] = arg.slice(eq + 1);
    } else {
      const next = args[i + 1];
      if (next === undefined) {
        throw new FlagParseError(
          "ERR_PARSE_ARGS_INVALID_OPTION_VALUE",
          `Option '--${name} <value>' argument missing`,
        );
      }
      if (next.startsWith("-")) {
        throw new FlagParseError(
          "ERR_PARSE_ARGS_INVALID_OPTION_VALUE",
          `Option '--${name} <value>' argument is ambiguous; to give a value starting with a ` +
            `dash write '--${name}=${next}'`,
        );
      }
      values[name] = next;
      i++;
    }
  }
  return { values };
}

function unexpected(arg: string): FlagParseError {
  return new FlagParseError(
    "ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL",
    `Unexpected argument '${arg}'. This command does not take positional arguments`,
  );
}
