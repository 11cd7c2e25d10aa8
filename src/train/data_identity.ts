/**
 * A training data file's identity, recorded in every checkpoint so that `--resume` can tell the
 * same data from a changed one before it seeks into it: the byte size, the number of lines, and
 * the SHA-256 of the first MiB. Portable: it reads a Web byte stream.
 *
 * @example
 * ```ts
 * import { dataIdentity, describeDataChange } from "./data_identity.ts";
 * const a = await dataIdentity(new Blob(['{"text":"a"}\n']).stream());
 * const b = await dataIdentity(new Blob(['{"text":"b"}\n']).stream());
 * describeDataChange(a, b); // "the first MiB differs"
 * ```
 */

/** What identifies a data file. */
export interface DataIdentity {
  bytes: number;
  lines: number;
  /** Hex SHA-256 of the first {@link HASHED_PREFIX_BYTES} bytes. */
  sha256FirstMiB: string;
}

/** How much of the file is hashed: enough to catch an edited file, cheap for a large one. */
export const HASHED_PREFIX_BYTES = 1 << 20;

/** Reads `bytes` to the end once and returns its identity. */
export async function dataIdentity(bytes: ReadableStream<Uint8Array>): Promise<DataIdentity> {
  const prefix = new Uint8Array(HASHED_PREFIX_BYTES);
  let held = 0;
  let total = 0;
  let lines = 0;
  let last = 0x0a;
  for await (const chunk of bytes) {
    if (held < prefix.length) {
      const take = Math.min(chunk.length, prefix.length - held);
      prefix.set(chunk.subarray(0, take), held);
      held += take;
    }
    for (let i = 0; i < chunk.length; i++) if (chunk[i] === 0x0a) lines++;
    if (chunk.length) last = chunk[chunk.length - 1];
    total += chunk.length;
  }
  if (last !== 0x0a) lines++; // a last line without its newline still counts
  const digest = new Uint8Array(
    await crypto.subtle.digest("SHA-256", prefix.subarray(0, held)),
  );
  return {
    bytes: total,
    lines,
    sha256FirstMiB: Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join(""),
  };
}

/** The identity as stored (null when the value is not one). */
export function parseDataIdentity(v: unknown): DataIdentity | null {
  if (!v || typeof v !== "object") return null;
  const o = v as Record<string, unknown>;
  if (
    !Number.isSafeInteger(o.bytes) || !Number.isSafeInteger(o.lines) ||
    typeof o.sha256FirstMiB !== "string"
  ) return null;
  return { bytes: o.bytes as number, lines: o.lines as number, sha256FirstMiB: o.sha256FirstMiB };
}

/** How `now` differs from `recorded`, in words, or null when they are the same data. */
export function describeDataChange(recorded: DataIdentity, now: DataIdentity): string | null {
  if (recorded.bytes !== now.bytes) return `${recorded.bytes} bytes then, ${now.bytes} now`;
  if (recorded.lines !== now.lines) return `${recorded.lines} lines then, ${now.lines} now`;
  if (recorded.sha256FirstMiB !== now.sha256FirstMiB) return "the first MiB differs";
  return null;
}
