/**
 * One line of training data -> token ids and labels. Four record shapes are accepted:
 *
 * - `{"text": "..."}`: plain text, trained on every token (BOS per the tokenizer, EOS appended).
 * - `{"prompt": "...", "completion": "..."}`: trained on the completion (and EOS) only.
 * - `{"messages": [{"role", "content"}, ...]}`: rendered with the chat template, trained on
 *   assistant turns only (see `chat.ts`).
 * - `{"input_ids": [...], "labels"?: [...]}`: pre-tokenized; labels default to the ids, -100 =
 *   ignored. Needs no tokenizer.
 *
 * Labels follow the Hugging Face convention: `labels[i]` is the token at position i (not shifted);
 * the loss shifts them.
 */
import { type ChatMessage, tokenizeChat } from "./chat.ts";
import { IGNORE_INDEX } from "./labels.ts";
import { type RecordKind, recordKind } from "./record_kind.ts";
import type { TextTokenizer } from "./tokenizer.ts";

/** A tokenized example. */
export interface TokenizedExample {
  inputIds: Int32Array;
  labels: Int32Array;
}

/** A bad data line: `FILE:LINE: what is wrong`. `cause` keeps the error it wraps. */
export class DataError extends Error {
  constructor(
    readonly file: string,
    readonly line: number,
    readonly reason: string,
    options?: ErrorOptions,
  ) {
    super(`${file}:${line}: ${reason}`, options);
    this.name = "DataError";
  }
}

/**
 * A tokenizer may list special tokens past the model's embedding rows (Gemma 3's text models
 * ship the family's tokenizer, with `<image_soft_token>` at id 262144 of a 262144-row
 * embedding); text that spells one out is refused, naming it.
 */
export function checkEncodedIds(ids: number[], tok: TextTokenizer, vocabSize: number): void {
  for (const id of ids) {
    if (id >= vocabSize) {
      throw new Error(
        `the text holds ${JSON.stringify(tok.decode([id]))} (token id ${id}), outside the ` +
          `model's vocabulary [0, ${vocabSize})`,
      );
    }
  }
}

function checkIds(ids: number[], vocabSize: number, field: string): void {
  for (let i = 0; i < ids.length; i++) {
    if (ids[i] < 0 || ids[i] >= vocabSize) {
      throw new Error(`${field}[${i}] = ${ids[i]} is outside the vocabulary [0, ${vocabSize})`);
    }
  }
}

/** The tokenizer a `kind` record is encoded with; a plain Error when there is none. */
function requireTokenizer(tok: TextTokenizer | null, kind: RecordKind): TextTokenizer {
  if (!tok) throw new Error(`"${kind}" data needs the model's tokenizer.json (none was found)`);
  return tok;
}

function withEos(tok: TextTokenizer, ids: number[]): number[] {
  if (tok.eosTokenId !== null && ids[ids.length - 1] !== tok.eosTokenId) ids.push(tok.eosTokenId);
  return ids;
}

/**
 * Parses a record already decoded from JSON ({@link recordKind} checks its fields first). Throws a
 * plain Error (the caller adds file:line), also when `tok` is null and the record needs one: a
 * reader asks `needsTokenizer` (record_kind.ts) first and loads the tokenizer before it encodes.
 */
export function tokenizeRecord(
  record: unknown,
  tok: TextTokenizer | null,
  vocabSize: number,
): TokenizedExample {
  const kind = recordKind(record);
  const r = record as Record<string, unknown>;
  let ids: number[];
  let labels: number[];
  if (kind === "input_ids") {
    ids = r.input_ids as number[];
    checkIds(ids, vocabSize, "input_ids");
    if (r.labels === undefined) {
      labels = ids;
    } else {
      labels = r.labels as number[];
      for (let i = 0; i < labels.length; i++) {
        if (labels[i] !== IGNORE_INDEX && (labels[i] < 0 || labels[i] >= vocabSize)) {
          throw new Error(`labels[${i}] = ${labels[i]} is neither -100 nor a token id`);
        }
      }
    }
  } else if (kind === "messages") {
    ({ inputIds: ids, labels } = tokenizeChat(
      requireTokenizer(tok, kind),
      r.messages as ChatMessage[],
    ));
  } else if (kind === "prompt") {
    const t = requireTokenizer(tok, kind);
    const prompt = t.encode(r.prompt as string, true);
    const completion = withEos(t, t.encode(r.completion as string));
    ids = [...prompt, ...completion];
    labels = [...prompt.map(() => IGNORE_INDEX), ...completion];
  } else {
    const t = requireTokenizer(tok, kind);
    ids = withEos(t, t.encode(r.text as string, true));
    labels = ids;
  }
  if (kind !== "input_ids") checkEncodedIds(ids, tok!, vocabSize);
  if (ids.length < 2) throw new Error(`only ${ids.length} token(s): need at least 2 to train`);
  return { inputIds: Int32Array.from(ids), labels: Int32Array.from(labels) };
}

/** Decodes one JSONL line; bad JSON is a {@link DataError} naming `file:line`. */
export function parseJsonLine(text: string, file: string, line: number): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new DataError(file, line, `not valid JSON (${(e as Error).message})`);
  }
}

/** Parses one JSONL line; errors become {@link DataError}s naming `file:line`. */
export function parseExampleLine(
  text: string,
  file: string,
  line: number,
  tok: TextTokenizer | null,
  vocabSize: number,
): TokenizedExample {
  const record = parseJsonLine(text, file, line);
  try {
    return tokenizeRecord(record, tok, vocabSize);
  } catch (e) {
    throw new DataError(file, line, (e as Error).message, { cause: e });
  }
}
