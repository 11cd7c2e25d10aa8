/**
 * The shape of a training record, told from its fields alone: which of the four shapes of
 * `example.ts` it is, and whether encoding it needs the model's tokenizer. A reader decides from
 * this, line by line and before it encodes, whether to build the tokenizer, so pre-tokenized data
 * never builds one and a malformed line keeps its own error.
 *
 * @example
 * ```ts
 * import { needsTokenizer } from "./record_kind.ts";
 * console.log(needsTokenizer({ input_ids: [1, 2, 3] })); // false
 * console.log(needsTokenizer({ text: "Hello" })); // true
 * ```
 */

/** The four record shapes, named by their first key. */
export type RecordKind = "input_ids" | "messages" | "prompt" | "text";

function isIntArray(v: unknown): v is number[] {
  return Array.isArray(v) && v.every((x) => Number.isInteger(x));
}

/**
 * Checks the fields of a record already decoded from JSON and names its shape, without a
 * tokenizer: a reader can tell from one line whether it needs the tokenizer, before it loads one.
 * Throws a plain Error for a malformed record (the caller adds file:line).
 */
export function recordKind(record: unknown): RecordKind {
  if (!record || typeof record !== "object" || Array.isArray(record)) {
    throw new Error(
      `expected a JSON object, got ${
        record === null ? "null" : Array.isArray(record) ? "an array" : typeof record
      }`,
    );
  }
  const r = record as Record<string, unknown>;
  if ("input_ids" in r) {
    if (!isIntArray(r.input_ids)) throw new Error(`"input_ids" must be an array of integers`);
    if (r.labels !== undefined) {
      if (!isIntArray(r.labels)) throw new Error(`"labels" must be an array of integers`);
      if (r.labels.length !== r.input_ids.length) {
        throw new Error(
          `"labels" has ${r.labels.length} entries but "input_ids" has ${r.input_ids.length}`,
        );
      }
    }
    return "input_ids";
  }
  if ("messages" in r) {
    const m = r.messages;
    if (!Array.isArray(m) || m.length === 0) {
      throw new Error(`"messages" must be a non-empty array`);
    }
    m.forEach((msg, i) => {
      if (!msg || typeof msg !== "object" || typeof msg.role !== "string") {
        throw new Error(`messages[${i}] needs a string "role"`);
      }
      if (typeof msg.content !== "string") {
        throw new Error(`messages[${i}] needs a string "content"`);
      }
    });
    return "messages";
  }
  if ("prompt" in r || "completion" in r) {
    if (typeof r.prompt !== "string") throw new Error(`"prompt" must be a string`);
    if (typeof r.completion !== "string") throw new Error(`"completion" must be a string`);
    if (r.completion === "") throw new Error(`"completion" is empty: nothing to train on`);
    return "prompt";
  }
  if ("text" in r) {
    if (typeof r.text !== "string" || r.text === "") {
      throw new Error(`"text" must be a non-empty string`);
    }
    return "text";
  }
  throw new Error(
    `unknown record: expected "text", "prompt"+"completion", "messages" or "input_ids" ` +
      `(got keys ${JSON.stringify(Object.keys(r))})`,
  );
}

/**
 * Whether encoding `record` needs the model's tokenizer: every shape but pre-tokenized
 * `input_ids`. Pure; a malformed record throws its own plain Error ({@link recordKind}), so no
 * tokenizer is built for a line that would be refused anyway.
 */
export function needsTokenizer(record: unknown): boolean {
  return recordKind(record) !== "input_ids";
}
