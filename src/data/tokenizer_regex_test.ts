import { deepStrictEqual, throws } from "node:assert/strict";
import { translatePattern, UnsupportedPatternError } from "./tokenizer_regex.ts";

const QWEN =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

Deno.test("translatePattern: \\s is Unicode White_Space, which U+FEFF is not", () => {
  const re = translatePattern(QWEN);
  // JavaScript's own \s would split this into ["\ufeff", "//"].
  deepStrictEqual("\ufeff//".match(re), ["\ufeff//"]);
  deepStrictEqual("1\u0085\u0085 2".match(re), ["1", "\u0085\u0085", " ", "2"]);
});

Deno.test("translatePattern: (?i:…) folds ASCII only", () => {
  const re = translatePattern(QWEN);
  deepStrictEqual("it'S".match(re), ["it", "'S"]);
  // Under JavaScript's Unicode `i`, 'ſ would match 's; Oniguruma's ASCII fold does not.
  deepStrictEqual("x'\u017f".match(re), ["x", "'\u017f"]);
});

Deno.test("translatePattern: constructs without an exact JS meaning are refused", () => {
  for (const p of ["(?>a)", "a++", "\\h", "(?m:a)", "[a[b]]"]) {
    throws(() => translatePattern(p), UnsupportedPatternError, p);
  }
});
