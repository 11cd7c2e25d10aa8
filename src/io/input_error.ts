/**
 * Which errors are about the user's input rather than a bug: a malformed checkpoint, config or
 * adapter, a missing or unreadable file, a failing server. Their messages already name the file
 * and what is wrong, so a command line prints that one line.
 *
 * @example
 * ```ts
 * import { isInputError } from "./input_error.ts";
 * isInputError(new TypeError("x is undefined")); // false: a bug
 * ```
 */
import { ConfigError } from "./config.ts";
import { HttpSourceError } from "./http_source.ts";
import { SafetensorsError } from "./safetensors.ts";

/** True for an error whose message is the whole story for the user. */
export function isInputError(e: unknown): boolean {
  const errors = (globalThis as { Deno?: typeof Deno }).Deno?.errors;
  return e instanceof SafetensorsError || e instanceof ConfigError ||
    e instanceof HttpSourceError ||
    (errors !== undefined &&
      (e instanceof errors.NotFound || e instanceof errors.PermissionDenied)) ||
    // Plain Errors are what the readers throw for malformed files (adapters, checkpoints).
    (e instanceof Error && Object.getPrototypeOf(e) === Error.prototype);
}
