import assert from "node:assert/strict";
import { DEMO_MODEL_CONFIG } from "../model/demo_model.ts";
import { defaultTrainArgs, FLAGS } from "./args.ts";
import {
  DEMO_DEFAULTS,
  demoDataPath,
  demoEvalDataPath,
  demoIntro,
  demoOutro,
  endsWithShowcase,
} from "./demo.ts";

Deno.test("demo: its data files are the bundled chats, train and held-out eval apart", async () => {
  for (const path of [demoDataPath(), demoEvalDataPath()]) {
    const lines = (await Deno.readTextFile(path)).trim().split("\n");
    assert.ok(lines.length > 0 && lines[0] !== "", path);
    for (const line of lines) assert.ok(Array.isArray(JSON.parse(line).messages), path);
  }
  const train = new Set((await Deno.readTextFile(demoDataPath())).trim().split("\n"));
  const held = (await Deno.readTextFile(demoEvalDataPath())).trim().split("\n");
  assert.deepEqual(held.filter((l) => train.has(l)), [], "an eval chat is also trained on");
});

Deno.test("demo: its defaults are train flags, and differ from a real run's", () => {
  const keys = new Set(FLAGS.map((f) => f.key));
  const real = defaultTrainArgs() as unknown as Record<string, unknown>;
  for (const [key, value] of Object.entries(DEMO_DEFAULTS)) {
    assert.ok(keys.has(key as keyof typeof DEMO_DEFAULTS), `${key} is no train flag`);
    assert.notDeepEqual(value, real[key], `${key} is the real default already`);
  }
});

Deno.test("demo: the intro says what is trained, the outro where the adapter went", () => {
  const args = { ...defaultTrainArgs(), ...DEMO_DEFAULTS };
  const intro = demoIntro(args);
  assert.match(intro, /RANDOM weights/);
  assert.match(
    intro,
    new RegExp(
      `hidden ${DEMO_MODEL_CONFIG.hiddenSize}, ` +
        `${DEMO_MODEL_CONFIG.numLayers} layers`,
    ),
  );
  assert.match(
    intro,
    new RegExp(
      `method ${args.method}, ${args.quant} base weights, ` +
        `rank ${args.rank}, ${DEMO_DEFAULTS.steps} steps`,
    ),
  );
  assert.match(demoOutro(args), new RegExp(`saved to ${DEMO_DEFAULTS.out}\\.`));
});

Deno.test("demo: only a demo run that trains on its held-out eval data, not quiet, shows off", () => {
  const run = { model: null, steps: 80, evalData: demoEvalDataPath(), quiet: false };
  assert.equal(endsWithShowcase(run), true);
  assert.equal(endsWithShowcase({ ...run, model: "m" }), false);
  assert.equal(endsWithShowcase({ ...run, steps: 0 }), false);
  assert.equal(endsWithShowcase({ ...run, evalData: "mine.jsonl" }), false);
  assert.equal(endsWithShowcase({ ...run, quiet: true }), false);
});
