/**
 * {@link loadRows} for a file on disk (Deno): the file is opened, streamed once and closed,
 * however the read ends.
 *
 * @example
 * ```ts
 * import { loadRowsFile } from "./dataset.ts";
 * const path = await Deno.makeTempFile({ suffix: ".jsonl" });
 * await Deno.writeTextFile(path, '{"input_ids":[1,2,3]}\n{"input_ids":[4,5]}\n');
 * const { rows } = await loadRowsFile(path, { vocabSize: 8, seqLen: 4, packing: "greedy" });
 * console.log(rows.length); // 2: 3 + 2 tokens do not fit one row of 4
 * ```
 */
import { type LoadedRows, loadRows, type LoadRowsOptions } from "../data/dataset.ts";

/** Reads the JSONL file at `path` into packed rows; errors name `path:LINE`. */
export async function loadRowsFile(path: string, options: LoadRowsOptions): Promise<LoadedRows> {
  const file = await Deno.open(path, { read: true });
  // The stream closes the file when it ends or is cancelled (a bad line stops the read).
  return await loadRows(file.readable, path, options);
}
