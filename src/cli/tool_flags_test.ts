import assert from "node:assert/strict";
import { parseToolFlags } from "./tool_flags.ts";
import { UsageError } from "./usage.ts";

const names = { strings: ["out", "model", "seq-len"], booleans: ["merge"] };

const usage = (f: () => unknown) => {
  try {
    f();
  } catch (e) {
    assert.ok(e instanceof UsageError, String(e));
    return e.message;
  }
  assert.fail("no UsageError");
};

Deno.test("tool flags: strings, required strings, booleans, integers and --help", () => {
  const f = parseToolFlags(["--out", "a", "--merge", "--seq-len=64"], names);
  assert.equal(f.help, false);
  assert.equal(f.string("out"), "a");
  assert.equal(f.need("out"), "a");
  assert.equal(f.string("model"), null);
  assert.equal(f.boolean("merge"), true);
  assert.equal(f.integer("seq-len", 2), 64);
  assert.equal(parseToolFlags([], names).integer("seq-len", 2), null);
  assert.equal(parseToolFlags([], names).boolean("merge"), false);
  assert.equal(parseToolFlags(["-h"], names).help, true);
  assert.equal(parseToolFlags(["--help"], names).help, true);
});

Deno.test("tool flags: every mistake is a UsageError naming the flag", () => {
  const parse = (argv: string[]) => () => parseToolFlags(argv, names);
  assert.equal(usage(parse(["--bogus"])), "--bogus: unknown option (see --help)");
  assert.equal(usage(parse(["stray"])), "stray: unexpected argument (see --help)");
  assert.equal(usage(parse(["--out"])), "--out: needs a value");
  assert.equal(
    usage(parse(["--out", "-x"])),
    '--out: a value starting with "-" must be written --out=VALUE',
  );
  assert.equal(
    usage(parse(["--help=1"])),
    "--help: Option '--help' does not take an argument",
  );
  const empty = parseToolFlags(["--out", "", "--seq-len", ""], names);
  assert.equal(usage(() => empty.string("out")), "--out: must not be empty");
  assert.equal(usage(() => empty.need("out")), "--out: required");
  assert.equal(usage(() => empty.need("model")), "--model: required");
  assert.equal(
    usage(() => empty.integer("seq-len", 2)),
    '--seq-len: expected an integer >= 2, got ""',
  );
  for (const bad of ["1", "x", "2.5", "1e3", "99999999999999999999"]) {
    assert.equal(
      usage(() => parseToolFlags([`--seq-len=${bad}`], names).integer("seq-len", 2)),
      `--seq-len: expected an integer >= 2, got "${bad}"`,
    );
  }
  // Asking for a flag that was never declared is the tool's bug, not the user's.
  assert.throws(() => empty.string("merge"), /RangeError: no string flag --merge was declared/);
  assert.throws(() => empty.boolean("nope"), /RangeError: no boolean flag --nope was declared/);
});
