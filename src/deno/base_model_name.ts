/**
 * `base_model_name_or_path` of a model given on the command line (a directory or a URL): reads
 * its config.json for `_name_or_path`, see `base_model_name.ts`.
 */
import { checkpointFiles } from "../io/model_source.ts";
import { dirFiles } from "./model_source_files.ts";
import { readJson } from "../io/model_source_files.ts";
import { baseModelName } from "../train/base_model_name.ts";
import { isUrl } from "./model_location.ts";

/** The hub id when the model's config.json names one, else the model's absolute path (or URL). */
export async function baseModelNameDeno(model: string): Promise<string> {
  const files = isUrl(model) ? checkpointFiles(model) : dirFiles(model);
  const raw = await readJson(files, "config.json").catch(() => null);
  return baseModelName(model, raw, Deno.cwd());
}
