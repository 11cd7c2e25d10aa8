/**
 * Identities of checkpoint files for the streamed weight cache key: a string that changes when a
 * file's bytes change, so a checkpoint replaced by another with identical tensor headers (a
 * different fine-tune of the same base, a corrected re-download) never reuses the old cache.
 *
 * A source's own {@link ByteSource.identity} (file size + mtime + inode, an HTTP ETag, a File's
 * lastModified) is used when it has one. Otherwise the identity is a SHA-256 over the size and a
 * fixed set of samples of the bytes ({@link sampleRanges}); files of at most
 * {@link FULL_HASH_BYTES} are hashed whole.
 *
 * Sampling detects a replaced checkpoint: different weights differ nearly everywhere, so they
 * differ in the sampled windows too. It does NOT detect a change confined to unsampled bytes
 * (e.g. one corrected tensor in the middle of a large file). Sources with a real identity do not
 * need it; only sources without one (bytes in memory, a plain Blob, an HTTP server that sends
 * neither ETag nor Last-Modified) rely on it.
 *
 * @example
 * ```ts
 * import { MemorySource } from "./byte_source.ts";
 * import { sourceIdentity } from "./cache_identity.ts";
 * await sourceIdentity(new MemorySource("m", new Uint8Array(8))); // "sha256 <hex>"
 * ```
 */
import type { ByteSource } from "./byte_source.ts";

/** Files up to this size are hashed whole (cheaper than reasoning about overlapping samples). */
export const FULL_HASH_BYTES = 1 << 20;
/** Bytes sampled at the start and at the end of a larger file. */
export const SAMPLE_EDGE_BYTES = 64 << 10;
/** Size of each evenly spaced window between the edges. */
export const SAMPLE_WINDOW_BYTES = 4 << 10;
/** Number of evenly spaced windows. */
export const SAMPLE_WINDOWS = 14;

/** Lowercase hex SHA-256 of `bytes`. */
export async function sha256Hex(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", bytes);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * The `[offset, length]` ranges hashed for a file of `size` bytes, in increasing offset order:
 * the whole file up to {@link FULL_HASH_BYTES}, else the first and last
 * {@link SAMPLE_EDGE_BYTES} and {@link SAMPLE_WINDOWS} windows spread evenly between them. Fixed
 * by the size alone, so an unchanged file always hashes the same bytes.
 */
export function sampleRanges(size: number): [number, number][] {
  if (size <= FULL_HASH_BYTES) return [[0, size]];
  const ranges: [number, number][] = [[0, SAMPLE_EDGE_BYTES]];
  // Window i starts at the (i+1)/(n+1) point of the span between the two edges.
  const lo = SAMPLE_EDGE_BYTES;
  const span = size - 2 * SAMPLE_EDGE_BYTES - SAMPLE_WINDOW_BYTES;
  for (let i = 0; i < SAMPLE_WINDOWS; i++) {
    ranges.push([lo + Math.floor(span * (i + 1) / (SAMPLE_WINDOWS + 1)), SAMPLE_WINDOW_BYTES]);
  }
  ranges.push([size - SAMPLE_EDGE_BYTES, SAMPLE_EDGE_BYTES]);
  return ranges;
}

/**
 * `sha256 <hex>` over the size (8 bytes, little-endian) followed by the bytes of
 * {@link sampleRanges}. See the module comment for what sampling can and cannot detect.
 */
export async function sampledContentHash(source: ByteSource): Promise<string> {
  const size = await source.size();
  const ranges = sampleRanges(size);
  let total = 8;
  for (const [, length] of ranges) total += length;
  const buf = new Uint8Array(total);
  new DataView(buf.buffer).setBigUint64(0, BigInt(size), true);
  // Concurrent reads: an HTTP source fetches the windows in parallel; a file serializes them.
  const parts = await Promise.all(ranges.map(([offset, length]) => source.read(offset, length)));
  let at = 8;
  for (const p of parts) {
    buf.set(p, at);
    at += p.byteLength;
  }
  return `sha256 ${await sha256Hex(buf)}`;
}

/** The source's own identity when it has one, else {@link sampledContentHash}. */
export async function sourceIdentity(source: ByteSource): Promise<string> {
  const own = source.identity ? await source.identity() : null;
  return own ?? await sampledContentHash(source);
}
