import assert from "node:assert/strict";
import { parseArgs } from "node:util";
import { FlagParseError, parseFlags } from "./flags.ts";

const OPTIONS = {
  help: { type: "boolean", short: "h" },
  rank: { type: "string" },
  "max-memory": { type: "string" },
  resume: { type: "boolean" },
} as const;

/** What `node:util` parseArgs (strict, no positionals) gives: the values or the error code. */
function nodeResult(args: string[]): Record<string, unknown> | string {
  try {
    const { values } = parseArgs({
      args,
      options: OPTIONS,
      strict: true,
      allowPositionals: false,
    });
    return { ...values };
  } catch (e) {
    return (e as { code: string }).code;
  }
}

function ownResult(args: string[]): Record<string, unknown> | string {
  try {
    return { ...parseFlags(args, OPTIONS).values };
  } catch (e) {
    assert.ok(e instanceof FlagParseError);
    return e.code;
  }
}

Deno.test("parseFlags agrees with node:util parseArgs on values and error kinds", () => {
  const cases: string[][] = [
    [],
    ["--rank", "16"],
    ["--rank=16"],
    ["--rank=", "--resume"],
    ["--rank", "8", "--rank", "4"],
    ["--max-memory", "120", "--resume", "-h"],
    ["-h"],
    ["--help"],
    ["--rank"],
    ["--rank", "-3"],
    ["--rank=-3"],
    ["--rank", "--resume"],
    ["--resume=yes"],
    ["--nope"],
    ["--nope=1"],
    ["-x"],
    ["stray"],
    ["--rank", "8", "stray"],
    ["-"],
    ["--"],
    ["--", "after"],
    ["--rank", "a=b"],
    ["--rank=a=b"],
    ["--constructor"],
    ["--toString=1"],
  ];
  for (const args of cases) {
    assert.deepEqual(ownResult(args), nodeResult(args), JSON.stringify(args));
  }
});

Deno.test("parseFlags names the flag in its messages", () => {
  assert.throws(() => parseFlags(["--rank"], OPTIONS), /'--rank <value>' argument missing/);
  assert.throws(() => parseFlags(["--rank", "-3"], OPTIONS), /'--rank=-3'/);
  assert.throws(() => parseFlags(["--resume=1"], OPTIONS), /'--resume' does not take/);
  assert.throws(() => parseFlags(["--nope"], OPTIONS), /Unknown option '--nope'/);
  assert.throws(() => parseFlags(["x"], OPTIONS), /Unexpected argument 'x'/);
});
