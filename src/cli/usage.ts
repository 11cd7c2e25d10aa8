/**
 * What every command line here (train.ts, generate.ts, the tools) says about a bad command
 * line: a {@link UsageError}, printed as `error: --flag: what is wrong` with exit status 2, and
 * the parsers of flag values that raise it.
 *
 * @example
 * ```ts
 * import { parseIntFlag, UsageError } from "./usage.ts";
 * console.log(parseIntFlag("--steps", "12", 0)); // 12
 * try {
 *   parseIntFlag("--steps", "x", 0);
 * } catch (e) {
 *   console.log(e instanceof UsageError, (e as Error).message); // true --steps: expected an integer, got "x"
 * }
 * ```
 */

/** A bad command line: printed as `error: --flag: what is wrong`, exit status 2. */
export class UsageError extends Error {
  constructor(readonly flag: string, readonly reason: string) {
    super(`${flag}: ${reason}`);
    this.name = "UsageError";
  }
}

/** Parses an integer flag value in `[min, max]`. */
export function parseIntFlag(flag: string, raw: string, min: number, max?: number): number {
  const n = /^[+-]?\d+$/.test(raw.trim()) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(n)) throw new UsageError(flag, `expected an integer, got "${raw}"`);
  if (n < min) throw new UsageError(flag, `must be at least ${min}, got ${n}`);
  if (max !== undefined && n > max) throw new UsageError(flag, `must be at most ${max}, got ${n}`);
  return n;
}

/**
 * Parses a finite number flag value, at least `min` (greater than `min` when `exclusiveMin`) and
 * at most `max` when given.
 */
export function parseNumberFlag(
  flag: string,
  raw: string,
  min: number,
  exclusiveMin: boolean,
  max?: number,
): number {
  const n = raw.trim() === "" ? NaN : Number(raw);
  if (!Number.isFinite(n)) throw new UsageError(flag, `expected a number, got "${raw}"`);
  if (exclusiveMin ? n <= min : n < min) {
    throw new UsageError(
      flag,
      `must be ${exclusiveMin ? "greater than" : "at least"} ${min}, got ${n}`,
    );
  }
  if (max !== undefined && n > max) throw new UsageError(flag, `must be at most ${max}, got ${n}`);
  return n;
}

/**
 * The {@link UsageError} for an error thrown by `parseFlags` (strict, no positionals):
 * `--flag: reason` for an unknown option, a missing value, or a value that starts with "-";
 * `ARG: unexpected argument (<positionalHint>)` for a stray argument.
 */
export function usageErrorFromParseArgs(e: unknown, positionalHint: string): UsageError {
  const msg = (e as Error).message;
  const code = (e as { code?: string }).code;
  const flag = /'(-{1,2}[^' =]+)/.exec(msg)?.[1] ?? /"(-{1,2}[^" =]+)/.exec(msg)?.[1] ?? "?";
  if (code === "ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL") {
    const arg = /'([^']*)'/.exec(msg)?.[1] ?? "";
    return new UsageError(arg, `unexpected argument (${positionalHint})`);
  }
  if (code === "ERR_PARSE_ARGS_UNKNOWN_OPTION") {
    return new UsageError(flag, "unknown option (see --help)");
  }
  if (code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE") {
    if (/ambiguous/.test(msg)) {
      return new UsageError(flag, `a value starting with "-" must be written ${flag}=VALUE`);
    }
    return new UsageError(flag, /argument missing/.test(msg) ? "needs a value" : msg);
  }
  return new UsageError(flag, msg);
}
