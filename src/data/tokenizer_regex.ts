/**
 * Pre-tokenizer patterns of `tokenizer.json` are written for Oniguruma; this turns the subset the
 * supported tokenizers use into an equivalent JavaScript `RegExp` (flags `gu`).
 *
 * Two differences matter:
 * - `\s` in Oniguruma is Unicode White_Space, while JavaScript's `\s` adds U+FEFF and lacks
 *   U+0085, so `\s`/`\S` become `\p{White_Space}`/`\P{White_Space}`, inside classes too.
 * - `(?i:…)` folds ASCII only; JavaScript's `i` flag under `u` also folds `ſ` to `s` and the
 *   Kelvin sign to `k`, so each ASCII letter inside becomes a two-letter class instead.
 *
 * Anything else with a meaning of its own in Oniguruma (other inline flags, possessive or atomic
 * groups, `\h`, `\A`…) is refused with an error rather than translated approximately.
 *
 * @example
 * ```ts
 * import { translatePattern } from "./tokenizer_regex.ts";
 * const re = translatePattern("(?i:'s|'t)|\\s+(?!\\S)");
 * console.log(re.source); // "(?:'[sS]|'[tT])|\p{White_Space}+(?!\P{White_Space})"
 * ```
 */

/** A pattern this translator cannot carry over exactly. */
export class UnsupportedPatternError extends Error {
  override name = "UnsupportedPatternError";
}

const PASS_ESCAPES = new Set([..."nrtfv0.\\/|()[]{}^$*+?-'\" "]);

/** Translates one Oniguruma pattern (see the module doc) to a global Unicode RegExp. */
export function translatePattern(pattern: string): RegExp {
  let out = "";
  let inClass = false;
  // Depth of open groups, and the depth at which each `(?i:` opened (case folding ends there).
  let depth = 0;
  const foldAt: number[] = [];
  const refuse = (what: string): never => {
    throw new UnsupportedPatternError(`pre-tokenizer pattern: ${what} is not supported`);
  };
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === "\\") {
      const e = pattern[++i];
      if (e === undefined) refuse("a trailing backslash");
      if (e === "s") out += "\\p{White_Space}";
      else if (e === "S") out += "\\P{White_Space}";
      else if (e === "d") out += "\\p{Nd}";
      else if (e === "D") out += "\\P{Nd}";
      else if (e === "p" || e === "P") {
        const close = pattern.indexOf("}", i);
        if (pattern[i + 1] !== "{" || close < 0) refuse(`\\${e} without {…}`);
        out += pattern.slice(i - 1, close + 1);
        i = close;
      } else if (e === "x" || e === "u") {
        const m = /^[xu]\{([0-9A-Fa-f]+)\}|^x([0-9A-Fa-f]{2})|^u([0-9A-Fa-f]{4})/.exec(
          pattern.slice(i),
        );
        if (!m) refuse(`\\${e} escape`);
        out += `\\u{${m![1] ?? m![2] ?? m![3]}}`;
        i += m![0].length - 1;
      } else if (PASS_ESCAPES.has(e)) out += "\\" + e;
      else refuse(`the escape \\${e}`);
      continue;
    }
    if (inClass) {
      if (c === "]") inClass = false;
      else if (c === "[") refuse("a nested character class");
      out += foldAt.length && /[A-Za-z]/.test(c) ? c.toLowerCase() + c.toUpperCase() : c;
      continue;
    }
    if (c === "[") {
      inClass = true;
      out += c;
      if (pattern[i + 1] === "^") out += pattern[++i];
      continue;
    }
    if (c === "(") {
      depth++;
      if (pattern[i + 1] !== "?") {
        out += c;
        continue;
      }
      const rest = pattern.slice(i);
      if (rest.startsWith("(?i:")) {
        foldAt.push(depth);
        out += "(?:";
        i += 3;
      } else if (/^\(\?(?::|=|!|<=|<!)/.test(rest)) {
        const head = /^\(\?(?::|=|!|<=|<!)/.exec(rest)![0];
        out += head;
        i += head.length - 1;
      } else refuse(`the group ${rest.slice(0, 4)}`);
      continue;
    }
    if (c === ")") {
      if (foldAt[foldAt.length - 1] === depth) foldAt.pop();
      depth--;
      out += c;
      continue;
    }
    if ((c === "+" || c === "?" || c === "*" || c === "}") && pattern[i + 1] === "+") {
      refuse("a possessive quantifier");
    }
    if (foldAt.length && /[A-Za-z]/.test(c)) {
      out += `[${c.toLowerCase()}${c.toUpperCase()}]`;
      continue;
    }
    out += c;
  }
  if (inClass) refuse("an unclosed character class");
  return new RegExp(out, "gu");
}
