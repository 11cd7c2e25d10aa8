/**
 * What an adapter's `base_model_name_or_path` says, so that PEFT (`PeftModel.from_pretrained`)
 * and llama.cpp's converter can find the base: the Hugging Face hub id when the model's
 * config.json knows it (`_name_or_path`, as transformers saves it) or the model URL is a hub
 * `.../resolve/<revision>` URL; else the absolute local path. Portable.
 *
 * @example
 * ```ts
 * import { baseModelName } from "./base_model_name.ts";
 * baseModelName("./models/qwen", { _name_or_path: "Qwen/Qwen2.5-0.5B-Instruct" }, "/home/me");
 * // "Qwen/Qwen2.5-0.5B-Instruct"
 * ```
 */

/** True for a hub id `owner/name` (no path, no URL). */
export function isHubId(s: string): boolean {
  return /^[A-Za-z0-9][\w.-]*\/[A-Za-z0-9][\w.-]*$/.test(s) && !s.includes("..");
}

/** The hub id of a `https://huggingface.co/<owner>/<name>/resolve/<rev>` URL, or null. */
export function hubIdOfUrl(url: string): string | null {
  const m = /^https?:\/\/(?:www\.)?(?:huggingface\.co|hf\.co)\/([^/]+\/[^/]+)\/resolve\//i.exec(
    url,
  );
  return m && isHubId(m[1]) ? m[1] : null;
}

/** Joins a relative path onto `cwd` and drops `.` / `..` segments. */
export function absolutePath(path: string, cwd: string): string {
  const parts: string[] = [];
  for (const p of (path.startsWith("/") ? path : `${cwd}/${path}`).split("/")) {
    if (p === "" || p === ".") continue;
    if (p === "..") parts.pop();
    else parts.push(p);
  }
  return "/" + parts.join("/");
}

/**
 * `base_model_name_or_path` for a model given as `model` (a local directory or an http(s) URL)
 * whose parsed config.json is `config`.
 */
export function baseModelName(model: string, config: unknown, cwd: string): string {
  const named = (config as { _name_or_path?: unknown } | null)?._name_or_path;
  if (typeof named === "string" && isHubId(named)) return named;
  if (/^https?:\/\//i.test(model)) return hubIdOfUrl(model) ?? model;
  return absolutePath(model, cwd);
}
