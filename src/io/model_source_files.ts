/**
 * Where a checkpoint's files come from: a directory, a base URL, a set of browser `Blob`s/`File`s,
 * or bytes in memory. A {@link CheckpointFiles} opens a file by its name inside the checkpoint
 * (`config.json`, `model.safetensors`, shards...) as a {@link ByteSource}.
 *
 * The Deno directory implementation lives in `src/deno/model_source_files.ts`.
 *
 * @example
 * ```ts
 * import { memoryFiles, readJson } from "./model_source_files.ts";
 * const files = memoryFiles("demo", { "config.json": new TextEncoder().encode('{"a":1}') });
 * await readJson(files, "config.json"); // { a: 1 }
 * ```
 */
import { BlobSource, type ByteSource, MemorySource } from "./byte_source.ts";
import { HttpSource, HttpSourceError, type HttpSourceOptions } from "./http_source.ts";

/** The files of one checkpoint. */
export interface CheckpointFiles {
  /** Where the checkpoint is (directory, URL, label); file names in errors are `<name>/<file>`. */
  readonly name: string;
  /** Opens `file` (a relative name); resolves to null when the checkpoint has no such file. */
  open(file: string): Promise<ByteSource | null>;
}

/** Thrown for names that could escape the checkpoint (absolute, `..`, backslashes). */
export function checkRelativeName(owner: string, file: string): void {
  if (
    file === "" || file.startsWith("/") || file.includes("\\") ||
    file.split("/").some((p) => p === ".." || p === "." || p === "")
  ) {
    throw new Error(`${owner}: bad file name ${JSON.stringify(file)} in the checkpoint`);
  }
}

/** A checkpoint held in memory as `{ fileName: bytes }`. */
export function memoryFiles(
  name: string,
  files: Record<string, Uint8Array> | Map<string, Uint8Array>,
): CheckpointFiles {
  const map = files instanceof Map ? files : new Map(Object.entries(files));
  return {
    name,
    open(file) {
      const bytes = map.get(file);
      return Promise.resolve(bytes ? new MemorySource(`${name}/${file}`, bytes) : null);
    },
  };
}

/** A checkpoint given as `Blob`s or `File`s (e.g. from a browser file picker), by file name. */
export function blobFiles(
  name: string,
  files: Record<string, Blob> | Map<string, Blob>,
): CheckpointFiles {
  const map = files instanceof Map ? files : new Map(Object.entries(files));
  return {
    name,
    open(file) {
      const blob = map.get(file);
      return Promise.resolve(blob ? new BlobSource(blob, `${name}/${file}`) : null);
    },
  };
}

/** A checkpoint served over HTTP(S) under `base` (e.g. `https://host/repo/resolve/main/`). */
export function urlFiles(base: string | URL, options: HttpSourceOptions = {}): CheckpointFiles {
  const root = new URL(base);
  if (!root.pathname.endsWith("/")) root.pathname += "/";
  return {
    name: root.href.replace(/\/$/, ""),
    async open(file) {
      checkRelativeName(root.href, file);
      const src = new HttpSource(new URL(file, root), options);
      try {
        await src.size();
      } catch (e) {
        if (e instanceof HttpSourceError && e.status === 404) return null;
        throw e;
      }
      return src;
    },
  };
}

/** Reads a whole (small) file as text; null when absent. */
export async function readText(files: CheckpointFiles, file: string): Promise<string | null> {
  const src = await files.open(file);
  if (!src) return null;
  try {
    const bytes = await src.read(0, await src.size());
    try {
      return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    } catch {
      throw new Error(`${src.name}: not valid UTF-8`);
    }
  } finally {
    await src.close();
  }
}

/** Reads and parses a JSON file; null when absent. Parse errors name the file. */
export async function readJson(files: CheckpointFiles, file: string): Promise<unknown> {
  const text = await readText(files, file);
  if (text === null) return null;
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Error(`${files.name}/${file}: not valid JSON: ${(e as Error).message}`);
  }
}
