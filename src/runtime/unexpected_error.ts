/**
 * How a command line reports an error it did not expect (a bug, not bad input): one line with
 * the message and where it happened, so the user can report it; the whole trace only when
 * `SLIMTUNE_DEBUG=1` is set.
 *
 * @example
 * ```ts
 * import { unexpectedErrorText } from "./unexpected_error.ts";
 * unexpectedErrorText(new TypeError("x is undefined"), "slimtune train");
 * // "error: x is undefined (please report: slimtune train, TypeError at ...)\n"
 * ```
 */

/** True when the user asked for traces (`SLIMTUNE_DEBUG=1`); false without env access. */
export function debugTracesOn(): boolean {
  try {
    return (globalThis as { Deno?: typeof Deno }).Deno?.env.get("SLIMTUNE_DEBUG") === "1";
  } catch {
    return false;
  }
}

/** The trace of `e` with its newline when traces are on, else "". */
export function debugTrace(e: unknown): string {
  return debugTracesOn() && e instanceof Error && e.stack ? e.stack + "\n" : "";
}

/** The error's one-line report (`suffix` goes after it), plus the trace when asked for. */
export function unexpectedErrorText(e: unknown, command: string, suffix = ""): string {
  const err = e instanceof Error ? e : new Error(String(e));
  const frame = err.stack?.split("\n").find((l) => /^\s+at /.test(l))?.trim() ?? "no stack";
  const hint = debugTracesOn() ? "" : "; SLIMTUNE_DEBUG=1 prints the trace";
  return `error: ${err.message} (please report: ${command}, ${err.name} ${frame}${hint})` +
    `${suffix}\n${debugTrace(e)}`;
}
