import assert from "node:assert/strict";
import { UsageError } from "../cli/usage.ts";
import { generateHelpText, parseGenerateArgs } from "./args.ts";

const refused = (argv: string[], flag: string, reason: RegExp) =>
  assert.throws(
    () => parseGenerateArgs(argv),
    (e) => e instanceof UsageError && e.flag === flag && reason.test(e.reason),
    argv.join(" "),
  );

Deno.test("generate args: defaults, typed values and which flags were given", () => {
  const { args, given, help } = parseGenerateArgs(["--prompt", "Hi", "--temperature", "0"]);
  assert.equal(help, false);
  assert.deepEqual([...given].sort(), ["prompt", "temperature"]);
  assert.equal(args.prompt, "Hi");
  assert.equal(args.temperature, 0);
  assert.deepEqual(
    [args.maxNewTokens, args.topP, args.seed, args.threads, args.quant, args.weights],
    [128, 0.9, 0, 0, "int4", "resident"],
  );
  assert.deepEqual([args.model, args.adapter, args.chat, args.interactive], [
    null,
    null,
    null,
    false,
  ]);
  const chat = parseGenerateArgs([
    "--chat",
    "Hello",
    "--system",
    "Be brief.",
    "--no-thinking",
    "--top-p",
    "1",
    "--seed",
    "4294967295",
    "--weights",
    "streamed",
  ]).args;
  assert.deepEqual(
    [chat.chat, chat.system, chat.noThinking, chat.topP, chat.seed, chat.weights],
    ["Hello", "Be brief.", true, 1, 4294967295, "streamed"],
  );
  assert.equal(parseGenerateArgs(["--interactive", "--max-context", "200"]).args.maxContext, 200);
  assert.equal(parseGenerateArgs(["--input-ids", "1,2,3"]).args.inputIds, "1,2,3");
  // --help needs no prompt.
  assert.equal(parseGenerateArgs(["-h"]).help, true);
});

Deno.test("generate args: the prompt kinds exclude each other, and their options need them", () => {
  refused([], "--prompt", /required: --prompt TEXT/);
  refused(["--prompt", "a", "--chat", "b"], "--chat", /either --prompt or --chat/);
  refused(["--input-ids", "1", "--prompt", "a"], "--input-ids", /give one of/);
  refused(["--input-ids", "1", "--interactive"], "--input-ids", /give one of/);
  refused(["--prompt", "a", "--interactive"], "--interactive", /give --chat TEXT/);
  refused(["--prompt", "a", "--system", "s"], "--system", /only applies with --chat/);
  refused(["--prompt", "a", "--no-thinking"], "--no-thinking", /only applies with --chat/);
  refused(
    ["--chat", "a", "--max-context", "64"],
    "--max-context",
    /only applies with --interactive/,
  );
  refused(
    ["--interactive", "--max-context", "16", "--max-new-tokens", "16"],
    "--max-context",
    /16 positions cannot hold a prompt and --max-new-tokens 16/,
  );
});

Deno.test("generate args: values outside their range or choices name the flag", () => {
  refused(["--prompt", "a", "--top-p", "0"], "--top-p", /./);
  refused(["--prompt", "a", "--top-p", "1.5"], "--top-p", /./);
  refused(["--prompt", "a", "--temperature", "-1"], "--temperature", /./);
  refused(["--prompt", "a", "--max-new-tokens", "0"], "--max-new-tokens", /./);
  refused(["--prompt", "a", "--seed", "4294967296"], "--seed", /./);
  refused(["--prompt", "a", "--quant", "int8"], "--quant", /must be one of int4\|none, got "int8"/);
  refused(["--prompt", ""], "--prompt", /must not be empty/);
  assert.throws(() => parseGenerateArgs(["--prompt", "a", "--nope"]), UsageError);
});

Deno.test("generate args: --help lists every flag the parser takes, with its default", () => {
  const help = generateHelpText();
  for (
    const flag of ["--model", "--adapter", "--prompt", "--input-ids", "--chat", "--interactive"]
  ) {
    assert.match(help, new RegExp(`^  ${flag}\\b`, "m"), flag);
  }
  assert.match(help, /--max-new-tokens N +most tokens to generate.*\(default 128\)/);
  assert.match(help, /--quant int4\|none +base weights.*\(default int4\)/);
  assert.match(help, /^ {2}-h, --help +print this help$/m);
});
