import { match, ok, strictEqual } from "node:assert/strict";
import { unexpectedErrorText } from "./unexpected_error.ts";

function thrower(): never {
  throw new TypeError("boom");
}

Deno.test("an unexpected error is one line naming the command, the error and where it happened", () => {
  const saved = Deno.env.get("SLIMTUNE_DEBUG");
  try {
    Deno.env.delete("SLIMTUNE_DEBUG");
    let text = "";
    try {
      thrower();
    } catch (e) {
      text = unexpectedErrorText(e, "slimtune train", "; last good checkpoint: c");
    }
    strictEqual(text.split("\n").length, 2, text); // one line and its newline
    match(
      text,
      /^error: boom \(please report: slimtune train, TypeError at thrower .*unexpected_error_test\.ts:\d+:\d+\)?; SLIMTUNE_DEBUG=1 prints the trace\); last good checkpoint: c\n$/,
    );
    Deno.env.set("SLIMTUNE_DEBUG", "1");
    const traced = unexpectedErrorText(new RangeError("r"), "x");
    ok(traced.split("\n").length > 2, traced);
    match(traced, /\n\s+at /);
  } finally {
    if (saved === undefined) Deno.env.delete("SLIMTUNE_DEBUG");
    else Deno.env.set("SLIMTUNE_DEBUG", saved);
  }
});
