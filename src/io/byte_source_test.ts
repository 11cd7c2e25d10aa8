import assert from "node:assert/strict";
import { BlobSource, MemorySource, readInto } from "./byte_source.ts";
import { HttpSource, HttpSourceError } from "./http_source.ts";
import { openFileSource } from "./file_source_deno.ts";

const DATA = new Uint8Array(5000).map((_, i) => (i * 7 + 3) & 255);

/** Parses `bytes=a-b` (the only form HttpSource sends). */
function parseRange(req: Request): [number, number] | null {
  const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.get("Range") ?? "");
  return m ? [Number(m[1]), Number(m[2])] : null;
}

type Mode = "good" | "ignores-range" | "truncates" | "fails-midway" | "wrong-range" | "404";

async function withServer(mode: Mode, f: (url: string) => Promise<void>): Promise<void> {
  const ac = new AbortController();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen() {} },
    (req) => {
      if (mode === "404") return new Response("no", { status: 404, statusText: "Not Found" });
      const range = parseRange(req);
      if (mode === "ignores-range" || !range) return new Response(DATA);
      const [a, b0] = range;
      const b = Math.min(b0, DATA.length - 1);
      const slice = DATA.slice(a, b + 1);
      const headers = { "Content-Range": `bytes ${a}-${b}/${DATA.length}` };
      if (mode === "wrong-range") {
        return new Response(DATA.slice(0, slice.length), {
          status: 206,
          headers: { "Content-Range": `bytes 0-${slice.length - 1}/${DATA.length}` },
        });
      }
      if (mode === "truncates") {
        return new Response(slice.slice(0, slice.length >> 1), { status: 206, headers });
      }
      if (mode === "fails-midway") {
        const body = new ReadableStream<Uint8Array>({
          start(c) {
            c.enqueue(slice.slice(0, 10));
          },
          pull(c) {
            c.error(new Error("server gone"));
          },
        });
        return new Response(body, { status: 206, headers });
      }
      return new Response(slice, { status: 206, headers });
    },
  );
  try {
    await f(`http://127.0.0.1:${server.addr.port}/model.safetensors`);
  } finally {
    ac.abort();
    await server.finished;
  }
}

Deno.test("MemorySource and BlobSource read exact ranges and reject out-of-range reads", async () => {
  for (const src of [new MemorySource("m", DATA), new BlobSource(new File([DATA], "f.bin"))]) {
    assert.equal(await src.size(), 5000);
    assert.deepEqual(await src.read(4990, 10), DATA.slice(4990));
    assert.deepEqual(await src.read(7, 0), new Uint8Array(0));
    await assert.rejects(() => src.read(4995, 6), /goes past the end \(size 5000\)/);
    await assert.rejects(() => src.read(-1, 1), /bad read range/);
    const t = new Uint8Array(3);
    await readInto(src, 100, t);
    assert.deepEqual(t, DATA.slice(100, 103));
    await src.close();
  }
  assert.equal(new BlobSource(new File([DATA], "f.bin")).name, "f.bin");
});

Deno.test("FileSource reads ranges (also concurrently) and reports a short file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeFile(`${dir}/d.bin`, DATA);
    const src = await openFileSource(`${dir}/d.bin`);
    assert.equal(await src.size(), 5000);
    const parts = await Promise.all([src.read(0, 100), src.read(4000, 1000), src.read(50, 3)]);
    assert.deepEqual(parts[0], DATA.slice(0, 100));
    assert.deepEqual(parts[1], DATA.slice(4000));
    assert.deepEqual(parts[2], DATA.slice(50, 53));
    await assert.rejects(() => src.read(4999, 2), /d\.bin: read of 2 bytes at 4999 goes past/);
    await Deno.truncate(`${dir}/d.bin`, 10); // the file shrinks under us
    await assert.rejects(() => src.read(0, 20), /d\.bin: unexpected end of file at byte 10/);
    await src.close();
    await assert.rejects(() => src.read(0, 1), /read after close/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("HttpSource reads ranges from a server that honours Range", async () => {
  await withServer("good", async (url) => {
    const src = new HttpSource(url);
    assert.equal(await src.size(), 5000);
    assert.deepEqual(await src.read(1234, 2000), DATA.slice(1234, 3234));
    assert.deepEqual(await src.read(4999, 1), DATA.slice(4999));
    await assert.rejects(() => src.read(4999, 2), /goes past the end/);
  });
});

Deno.test("HttpSource: clear errors from misbehaving servers", async () => {
  const cases: [Mode, RegExp][] = [
    ["ignores-range", /server ignored the Range request \(HTTP 200 with the full body\)/],
    ["truncates", /response truncated: got 50 of 100 bytes/],
    ["fails-midway", /connection failed after 10 of 100 bytes/],
    ["wrong-range", /asked for bytes 300-399, server sent bytes 0-99\/5000/],
    ["404", /HTTP 404 Not Found/],
  ];
  for (const [mode, pattern] of cases) {
    await withServer(mode, async (url) => {
      const err = await new HttpSource(url).read(300, 100).then(() => null, (e) => e);
      assert.ok(err instanceof HttpSourceError, `${mode}: ${err}`);
      assert.ok(err.message.startsWith(url + ": "), err.message);
      assert.match(err.message, pattern, mode);
    });
  }
  await withServer("ignores-range", async (url) => {
    await assert.rejects(() => new HttpSource(url).size(), /ignored the Range request/);
  });
});
