/**
 * Deno file helpers: atomic writes and the like, for the other modules of `src/deno/` (and the
 * tools and tests); nothing outside `src/deno/` in `src/` touches `Deno.*` file APIs.
 *
 * @example
 * ```ts
 * import { writeFileAtomic } from "./fs.ts";
 * await writeFileAtomic("/tmp/example.bin", new Uint8Array([1, 2, 3]));
 * ```
 */

/** Data for {@link writeFileAtomic}: one buffer, or chunks produced synchronously or lazily. */
export type FileChunks = Uint8Array | Iterable<Uint8Array> | AsyncIterable<Uint8Array>;

function dirAndBase(path: string): [string, string] {
  const i = path.lastIndexOf("/");
  if (i < 0) return [".", path];
  return [i === 0 ? "/" : path.slice(0, i), path.slice(i + 1)];
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  let done = 0;
  while (done < bytes.byteLength) done += await file.write(bytes.subarray(done));
}

/** The OS's words for a file error, without the call and path Deno appends. */
export function reason(e: unknown): string {
  const msg = (e as Error)?.message ?? String(e);
  return msg.replace(/: (open|write|mkdir|rename|remove|stat|fsync|sync|realpath)\b[^]*$/, "");
}

/** A file could not be written; the file at `path`, if any, is as it was. */
export class FileWriteError extends Error {
  constructor(readonly path: string, cause: unknown) {
    super(`cannot write ${path}: ${reason(cause)}`, { cause });
    this.name = "FileWriteError";
  }
}

/**
 * Writes `data` to `path` so that readers see either the old file or the complete new one: the
 * bytes go to a temporary file in the same directory, are fsynced, and the temporary file is
 * renamed over `path`. On failure the temporary file is removed, `path` is untouched, and a
 * {@link FileWriteError} names `path`.
 */
export async function writeFileAtomic(path: string, data: FileChunks): Promise<void> {
  const [dir, base] = dirAndBase(path);
  const tmp = `${dir}/.${base}.${crypto.randomUUID().slice(0, 8)}.tmp`;
  // File-system failures name `path`; a failing data source keeps its own error.
  const io = async <T>(op: () => Promise<T>): Promise<T> => {
    try {
      return await op();
    } catch (e) {
      throw new FileWriteError(path, e);
    }
  };
  const file = await io(() => Deno.open(tmp, { write: true, createNew: true, mode: 0o644 }));
  let closed = false;
  try {
    if (data instanceof Uint8Array) {
      await io(() => writeAll(file, data));
    } else if (Symbol.asyncIterator in data) {
      for await (const chunk of data) await io(() => writeAll(file, chunk));
    } else {
      for (const chunk of data) await io(() => writeAll(file, chunk));
    }
    await io(() => file.sync());
    file.close();
    closed = true;
    await io(() => Deno.rename(tmp, path));
  } catch (e) {
    if (!closed) file.close();
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
  await syncDir(dir);
}

/** Makes a rename durable where the platform allows fsync on a directory (best effort). */
async function syncDir(dir: string): Promise<void> {
  try {
    const d = await Deno.open(dir, { read: true });
    try {
      await d.sync();
    } finally {
      d.close();
    }
  } catch {
    // Not supported everywhere (e.g. Windows); the rename itself is already atomic.
  }
}
