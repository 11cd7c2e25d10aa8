/**
 * safetensors reader. The whole header is read and validated before any tensor data is touched,
 * and nothing larger than the validated header is ever allocated from what a file claims:
 *
 * - u64 LE header length N; N > 100,000,000 or N > file size - 8 is rejected;
 * - N bytes of UTF-8 JSON (a JSON object, may be padded with trailing spaces);
 * - duplicate keys are rejected (JSON.parse would silently keep the last one);
 * - `__metadata__`: an object of string -> string;
 * - every tensor: exactly `dtype` (known), `shape` (non-negative integers) and `data_offsets`
 *   `[begin, end]`; `end - begin == numel * dtype size` in exact (BigInt) arithmetic;
 * - sorted by `begin`, offsets start at 0 and are contiguous (no gaps, no overlaps), and the last
 *   `end` equals file size - 8 - N (no truncation, no trailing bytes).
 *
 * Every failure is a {@link SafetensorsError} whose message reads `<file>: <what is wrong>`.
 *
 * @example
 * ```ts
 * import { MemorySource } from "./byte_source.ts";
 * import { SafetensorsFile } from "./safetensors.ts";
 * import { serializeSafetensors } from "./safetensors_writer.ts";
 * const bytes = serializeSafetensors([{ name: "w", dtype: "U8", shape: [2], data: new Uint8Array([1, 2]) }]);
 * const file = await SafetensorsFile.open(new MemorySource("w.safetensors", bytes));
 * await file.read("w"); // Uint8Array [1, 2]
 * ```
 */
import { type ByteSource, readInto } from "./byte_source.ts";
import { type Dtype, DTYPE_BYTES, isDtype } from "./dtype.ts";

/** Largest header accepted (bytes), as in the reference implementation. */
export const MAX_HEADER_BYTES = 100_000_000;

/** Any problem with a safetensors file; the message starts with the file name. */
export class SafetensorsError extends Error {
  constructor(readonly file: string, readonly what: string) {
    super(`${file}: ${what}`);
    this.name = "SafetensorsError";
  }
}

/** One validated header entry. Offsets are absolute positions in the file. */
export interface TensorInfo {
  name: string;
  dtype: Dtype;
  shape: number[];
  /** First byte in the file (8 + N + begin). */
  offset: number;
  byteLength: number;
}

/** The validated content of a header. */
export interface SafetensorsHeader {
  tensors: Map<string, TensorInfo>;
  metadata: Record<string, string>;
  /** 8 + N: where the data buffer starts. */
  dataStart: number;
}

const ENTRY_KEYS = new Set(["dtype", "shape", "data_offsets"]);

/**
 * Validates a header given its JSON bytes, and the file size. Throws {@link SafetensorsError}
 * naming `file`.
 */
export function parseSafetensorsHeader(
  file: string,
  json: Uint8Array,
  fileSize: number,
): SafetensorsHeader {
  const fail = (what: string): never => {
    throw new SafetensorsError(file, what);
  };
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(json);
  } catch {
    return fail("header is not valid UTF-8");
  }
  if (!text.startsWith("{")) fail("header does not start with '{' (not a JSON object)");
  let last = text.length - 1;
  while (last > 0 && text[last] === " ") last--;
  if (text[last] !== "}") fail("header JSON object is followed by something other than spaces");
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    return fail(`header is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    fail("header is not a JSON object");
  }
  const dup = findDuplicateKey(text);
  if (dup) {
    fail(`duplicate key "${dup.key}" in the header${dup.top ? "" : ` (inside "${dup.owner}")`}`);
  }

  const dataStart = 8 + json.byteLength;
  const dataLength = fileSize - dataStart;
  const metadata: Record<string, string> = {};
  const entries: { info: TensorInfo; begin: number; end: number }[] = [];
  for (const [name, value] of Object.entries(parsed as Record<string, unknown>)) {
    if (name === "__metadata__") {
      if (typeof value !== "object" || value === null || Array.isArray(value)) {
        fail("__metadata__ is not an object of strings");
      }
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
        if (typeof v !== "string") fail(`__metadata__ value for "${k}" is not a string`);
        metadata[k] = v as string;
      }
      continue;
    }
    const where = `tensor ${name}`;
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      fail(`${where}: entry is not an object`);
    }
    const e = value as Record<string, unknown>;
    for (const k of Object.keys(e)) if (!ENTRY_KEYS.has(k)) fail(`${where}: unknown field "${k}"`);
    if (!isDtype(e.dtype)) {
      fail(`${where}: unknown dtype ${JSON.stringify(e.dtype)}`);
    }
    const dtype = e.dtype as Dtype;
    if (!Array.isArray(e.shape)) fail(`${where}: shape is not an array`);
    const shape = e.shape as unknown[];
    let bytes = BigInt(DTYPE_BYTES[dtype]);
    for (const d of shape) {
      if (typeof d !== "number" || !Number.isSafeInteger(d) || d < 0) {
        fail(
          `${where}: shape ${
            JSON.stringify(shape)
          } has an entry that is not a non-negative integer`,
        );
      }
      bytes *= BigInt(d as number);
    }
    const off = e.data_offsets;
    if (
      !Array.isArray(off) || off.length !== 2 ||
      !off.every((x) => typeof x === "number" && Number.isSafeInteger(x) && x >= 0)
    ) {
      fail(
        `${where}: data_offsets ${
          JSON.stringify(off)
        } is not [begin, end] of non-negative integers`,
      );
    }
    const [begin, end] = off as [number, number];
    if (end < begin) fail(`${where}: data_offsets [${begin}, ${end}] end before begin`);
    if (BigInt(end - begin) !== bytes) {
      fail(
        `${where}: data_offsets [${begin}, ${end}] span ${end - begin} bytes, but ${dtype} ` +
          `${JSON.stringify(shape)} needs ${bytes}`,
      );
    }
    entries.push({
      info: {
        name,
        dtype,
        shape: shape as number[],
        offset: dataStart + begin,
        byteLength: end - begin,
      },
      begin,
      end,
    });
  }
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let at = 0;
  for (const { info, begin, end } of entries) {
    if (begin > at) {
      fail(`tensor ${info.name}: gap in the data before offset ${begin} (previous end ${at})`);
    }
    if (begin < at) {
      fail(
        `tensor ${info.name}: data_offsets [${begin}, ${end}] overlap the previous tensor (ends at ${at})`,
      );
    }
    at = end;
  }
  if (at > dataLength) {
    fail(`file is truncated: tensors need ${at} data bytes, only ${dataLength} present`);
  }
  if (at < dataLength) fail(`${dataLength - at} trailing bytes after the last tensor`);
  return { tensors: new Map(entries.map((e) => [e.info.name, e.info])), metadata, dataStart };
}

/**
 * Scans JSON text (already known to be valid) for a key repeated within one object, at any depth.
 */
function findDuplicateKey(
  text: string,
): { key: string; owner: string; top: boolean } | null {
  const stack: { keys: Set<string> | null; owner: string }[] = [];
  let lastKey = "";
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (c === "{" || c === "[") {
      stack.push({ keys: c === "{" ? new Set() : null, owner: lastKey });
      i++;
    } else if (c === "}" || c === "]") {
      stack.pop();
      i++;
    } else if (c === '"') {
      let j = i + 1;
      while (text[j] !== '"') j += text[j] === "\\" ? 2 : 1;
      const raw = text.slice(i, j + 1);
      i = j + 1;
      while (i < text.length && /\s/.test(text[i])) i++;
      const top = stack[stack.length - 1];
      if (text[i] === ":" && top?.keys) {
        const key = JSON.parse(raw) as string;
        if (top.keys.has(key)) return { key, owner: top.owner, top: stack.length === 1 };
        top.keys.add(key);
        lastKey = key;
      }
    } else {
      i++;
    }
  }
  return null;
}

/** A safetensors file opened over a {@link ByteSource}, header validated. */
export class SafetensorsFile {
  private constructor(
    readonly source: ByteSource,
    readonly header: SafetensorsHeader,
  ) {}

  /** Reads and validates the header; reads no tensor data. */
  static async open(source: ByteSource): Promise<SafetensorsFile> {
    const name = source.name;
    const size = await source.size();
    if (size < 8) throw new SafetensorsError(name, `file is ${size} bytes, too small for a header`);
    const prefix = await source.read(0, 8);
    const n = new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true);
    if (n > BigInt(MAX_HEADER_BYTES)) {
      throw new SafetensorsError(
        name,
        `header length ${n} exceeds the limit of ${MAX_HEADER_BYTES}`,
      );
    }
    if (n > BigInt(size - 8)) {
      throw new SafetensorsError(name, `header length ${n} exceeds the file size ${size} - 8`);
    }
    const json = await source.read(8, Number(n));
    return new SafetensorsFile(source, parseSafetensorsHeader(name, json, size));
  }

  get name(): string {
    return this.source.name;
  }

  /** `__metadata__` (empty when absent). */
  get metadata(): Record<string, string> {
    return this.header.metadata;
  }

  /** Tensor names in header order. */
  names(): string[] {
    return [...this.header.tensors.keys()];
  }

  has(name: string): boolean {
    return this.header.tensors.has(name);
  }

  /** The entry for `name`; throws `<file>: missing tensor <name>`. */
  info(name: string): TensorInfo {
    const t = this.header.tensors.get(name);
    if (!t) throw new SafetensorsError(this.name, `missing tensor ${name}`);
    return t;
  }

  /** The raw little-endian bytes of a tensor. */
  async read(name: string): Promise<Uint8Array> {
    const t = this.info(name);
    return await this.wrap(name, () => this.source.read(t.offset, t.byteLength));
  }

  /** Reads a tensor's bytes (or `length` bytes from byte `start` within it) into `target`. */
  async readInto(name: string, target: Uint8Array, start = 0): Promise<void> {
    const t = this.info(name);
    if (start < 0 || start + target.length > t.byteLength) {
      throw new SafetensorsError(
        this.name,
        `tensor ${name}: read of ${target.length} bytes at ${start} is outside its ${t.byteLength} bytes`,
      );
    }
    await this.wrap(name, () => readInto(this.source, t.offset + start, target));
  }

  close(): Promise<void> {
    return this.source.close();
  }

  private async wrap<T>(name: string, f: () => Promise<T>): Promise<T> {
    try {
      return await f();
    } catch (e) {
      if (e instanceof SafetensorsError) throw e;
      throw new SafetensorsError(this.name, `reading tensor ${name}: ${(e as Error).message}`);
    }
  }
}
