import assert from "node:assert/strict";
import { parseFlags } from "../runtime/flags.ts";
import { parseIntFlag, parseNumberFlag, UsageError, usageErrorFromParseArgs } from "./usage.ts";

const usage = (f: () => unknown) => {
  try {
    f();
  } catch (e) {
    assert.ok(e instanceof UsageError);
    return `${e.flag}: ${e.reason}`;
  }
  assert.fail("no UsageError");
};

Deno.test("usage: integer flags are whole numbers in their range", () => {
  assert.equal(parseIntFlag("--n", " 7 ", 0), 7);
  assert.equal(parseIntFlag("--n", "-2", -5, 5), -2);
  assert.equal(usage(() => parseIntFlag("--n", "1.5", 0)), '--n: expected an integer, got "1.5"');
  assert.equal(usage(() => parseIntFlag("--n", "-1", 0)), "--n: must be at least 0, got -1");
  assert.equal(usage(() => parseIntFlag("--n", "9", 0, 8)), "--n: must be at most 8, got 9");
});

Deno.test("usage: number flags are finite, above or at their minimum", () => {
  assert.equal(parseNumberFlag("--lr", "1e-3", 0, true), 1e-3);
  assert.equal(parseNumberFlag("--wd", "0", 0, false), 0);
  assert.equal(
    usage(() => parseNumberFlag("--lr", "0", 0, true)),
    "--lr: must be greater than 0, got 0",
  );
  assert.equal(
    usage(() => parseNumberFlag("--lr", "", 0, true)),
    '--lr: expected a number, got ""',
  );
  assert.equal(
    usage(() => parseNumberFlag("--p", "2", 0, false, 1)),
    "--p: must be at most 1, got 2",
  );
});

Deno.test("usage: parseFlags' errors become one-line usage errors naming the flag", () => {
  const options = { steps: { type: "string" as const }, quiet: { type: "boolean" as const } };
  const from = (argv: string[]) =>
    usage(() => {
      try {
        parseFlags(argv, options);
      } catch (e) {
        throw usageErrorFromParseArgs(e, "every option is a --flag");
      }
    });
  assert.equal(from(["--bogus"]), "--bogus: unknown option (see --help)");
  assert.equal(from(["--steps"]), "--steps: needs a value");
  assert.equal(
    from(["--steps", "-3"]),
    '--steps: a value starting with "-" must be written --steps=VALUE',
  );
  assert.equal(from(["stray"]), "stray: unexpected argument (every option is a --flag)");
});
