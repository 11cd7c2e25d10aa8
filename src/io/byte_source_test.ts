import assert from "node:assert/strict";
import { BlobSource, type ByteSource, MemorySource, readInto } from "./byte_source.ts";
import { HttpSource, HttpSourceError } from "./http_source.ts";
import { openFileSource } from "../deno/file_source.ts";
import { sampledContentHash, sourceIdentity } from "./cache_identity.ts";

const DATA = new Uint8Array(5000).map((_, i) => (i * 7 + 3) & 255);

/** Parses `bytes=a-b` (the only form HttpSource sends). */
function parseRange(req: Request): [number, number] | null {
  const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.get("Range") ?? "");
  return m ? [Number(m[1]), Number(m[2])] : null;
}

type Mode = "good" | "ignores-range" | "truncates" | "fails-midway" | "wrong-range" | "404";

/** Extras of {@link withServer}: headers added to every 206 response, and a request counter. */
interface ServerOptions {
  headers?: () => Record<string, string>;
  requests?: { count: number };
}

async function withServer(
  mode: Mode,
  f: (url: string) => Promise<void>,
  options: ServerOptions = {},
): Promise<void> {
  const ac = new AbortController();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen() {} },
    (req) => {
      if (options.requests) options.requests.count++;
      if (mode === "404") return new Response("no", { status: 404, statusText: "Not Found" });
      const range = parseRange(req);
      if (mode === "ignores-range" || !range) return new Response(DATA);
      const [a, b0] = range;
      const b = Math.min(b0, DATA.length - 1);
      const slice = DATA.slice(a, b + 1);
      const headers = {
        ...options.headers?.(),
        "Content-Range": `bytes ${a}-${b}/${DATA.length}`,
      };
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

Deno.test("FileSource reads straight into shared (threads) linear memory", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeFile(`${dir}/d.bin`, DATA);
    const src = await openFileSource(`${dir}/d.bin`);
    const memory = new WebAssembly.Memory({ initial: 1, maximum: 2, shared: true });
    assert.ok(memory.buffer instanceof SharedArrayBuffer);
    const target = new Uint8Array(memory.buffer, 123, 4000);
    await src.readInto(700, target);
    assert.deepEqual(target.slice(), DATA.slice(700, 4700));
    // Nothing outside the target is written.
    assert.equal(new Uint8Array(memory.buffer, 0, 123).some((b) => b !== 0), false);
    assert.equal(new Uint8Array(memory.buffer, 4123, 1000).some((b) => b !== 0), false);
    await src.close();
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

Deno.test("HttpSource calls fetch unbound, as browsers and workerd require of the global fetch", async () => {
  const real = globalThis.fetch;
  let calls = 0;
  // Like a browser's fetch: any receiver other than the global object (or none) is refused.
  const strict = function (this: unknown, input: RequestInfo | URL, init?: RequestInit) {
    if (this !== undefined && this !== globalThis) throw new TypeError("Illegal invocation");
    calls++;
    return real(input, init);
  };
  await withServer("good", async (url) => {
    globalThis.fetch = strict as typeof fetch;
    try {
      const src = new HttpSource(url);
      assert.equal(await src.size(), 5000);
      assert.deepEqual(await src.read(10, 20), DATA.slice(10, 30));
      // A caller's fetch is called the same way.
      const own = new HttpSource(url, { fetch: strict as typeof fetch });
      assert.deepEqual(await own.read(0, 4), DATA.slice(0, 4));
    } finally {
      globalThis.fetch = real;
    }
  });
  assert.ok(calls >= 3, `strict fetch was called ${calls} times`);
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

Deno.test("FileSource identity: stable while unchanged, new after an in-place write or a replace", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/d.bin`;
  try {
    await Deno.writeFile(path, DATA);
    const a = await openFileSource(path);
    const first = await a.identity();
    assert.ok(first !== null, "Linux reports an mtime");
    assert.equal(await a.identity(), first, "same open file");
    const again = await openFileSource(path);
    assert.equal(await again.identity(), first, "a later open of the unchanged file (next run)");
    await again.close();

    // Same size, other bytes, written in place: the open handle sees the new mtime.
    const t0 = (await Deno.stat(path)).mtime!;
    const file = await Deno.open(path, { write: true });
    await file.write(new Uint8Array([1, 2, 3]));
    file.close();
    await Deno.utime(path, t0, new Date(t0.getTime() + 5000));
    const inPlace = await a.identity();
    assert.notEqual(inPlace, first);
    await a.close();
    await assert.rejects(() => a.identity(), /identity after close/);

    // Replaced by rename with the same size and the very same mtime: the inode tells them apart.
    const mtime = (await Deno.stat(path)).mtime!;
    await Deno.writeFile(`${dir}/new.bin`, DATA.map((x) => x ^ 1));
    await Deno.utime(`${dir}/new.bin`, mtime, mtime);
    await Deno.rename(`${dir}/new.bin`, path);
    const b = await openFileSource(path);
    const replaced = await b.identity();
    await b.close();
    assert.ok(replaced !== null && replaced !== inPlace && replaced !== first, replaced!);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("HttpSource identity: ETag (also weak), else Last-Modified, else null; no extra request", async () => {
  const cases: [Record<string, string>, string | null][] = [
    [{ ETag: '"abc"', "Last-Modified": "Tue, 01 Jul 2025 10:00:00 GMT" }, 'etag "abc"'],
    [{ ETag: 'W/"weak-1"' }, 'etag W/"weak-1"'],
    [
      { "Last-Modified": "Tue, 01 Jul 2025 10:00:00 GMT" },
      "last-modified Tue, 01 Jul 2025 10:00:00 GMT",
    ],
    [{}, null],
  ];
  for (const [headers, want] of cases) {
    const requests = { count: 0 };
    await withServer("good", async (url) => {
      const src = new HttpSource(url);
      assert.equal(await src.size(), 5000);
      const id = await src.identity();
      assert.equal(requests.count, 1, "identity comes from the size probe");
      if (want === null) return assert.equal(id, null);
      assert.ok(id !== null && id.startsWith("http "), String(id));
      assert.deepEqual(JSON.parse(id.slice(5)), [url, 5000, want]);
    }, { headers: () => headers, requests });
  }

  // A new ETag (the file was replaced on the server) is a new identity for a new source.
  let etag = '"v1"';
  await withServer("good", async (url) => {
    const before = await new HttpSource(url).identity();
    assert.equal(await new HttpSource(url).identity(), before, "unchanged file, next run");
    etag = '"v2"';
    const after = await new HttpSource(url).identity();
    assert.ok(before !== null && after !== null && after !== before);
  }, { headers: () => ({ ETag: etag }) });
});

Deno.test("BlobSource identity: a File's name, size and lastModified; a plain Blob has none", async () => {
  const file = (bytes: Uint8Array<ArrayBuffer>, lastModified: number, name = "f.bin") =>
    new BlobSource(new File([bytes], name, { lastModified }));
  const id = await file(DATA, 1000).identity();
  assert.ok(id !== null);
  assert.equal(await file(DATA, 1000).identity(), id, "the same file picked again");
  assert.notEqual(await file(DATA, 2000).identity(), id, "modified later");
  assert.notEqual(await file(DATA.slice(1), 1000).identity(), id, "other size");
  assert.notEqual(await file(DATA, 1000, "g.bin").identity(), id, "other file");
  assert.equal(await new BlobSource(new Blob([DATA])).identity(), null);
  const mem: ByteSource = new MemorySource("m", DATA);
  assert.equal(mem.identity, undefined, "memory bytes have no identity");
  // Without an identity, the key falls back to hashing the bytes (whole, for a small file).
  const blobId = await sourceIdentity(new BlobSource(new Blob([DATA])));
  assert.equal(blobId, await sampledContentHash(new MemorySource("m", DATA)));
});

Deno.test("HttpSource sends If-Range with the probe's validator: a file changed mid-load is refused, not mixed", async () => {
  let version = 1;
  let etag = () => `"v${version}"`;
  let lastModified: string | null = null;
  const seenIfRange: (string | null)[] = [];
  const ac = new AbortController();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen() {} },
    (req) => {
      const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.get("Range") ?? "");
      const data = DATA.map((b) => (b + version) & 255);
      const validators: Record<string, string> = {};
      if (etag()) validators.ETag = etag();
      if (lastModified) validators["Last-Modified"] = lastModified;
      const ifRange = req.headers.get("If-Range");
      seenIfRange.push(ifRange);
      // RFC 9110: a range is served only if If-Range matches the current representation.
      const current = etag() && !etag().startsWith("W/") ? etag() : lastModified;
      if (!m || (ifRange !== null && ifRange !== current)) {
        return new Response(data, { headers: validators });
      }
      const a = Number(m[1]), b = Math.min(Number(m[2]), data.length - 1);
      return new Response(data.slice(a, b + 1), {
        status: 206,
        headers: { ...validators, "Content-Range": `bytes ${a}-${b}/${data.length}` },
      });
    },
  );
  const url = `http://127.0.0.1:${server.addr.port}/m.safetensors`;
  try {
    // Strong ETag: reads carry it; after the file changes, the next read is refused.
    let src = new HttpSource(url);
    await src.size();
    assert.deepEqual(await src.read(3, 4), DATA.slice(3, 7).map((b) => (b + 1) & 255));
    assert.equal(seenIfRange.at(-1), '"v1"');
    version = 2;
    await assert.rejects(src.read(3, 4), /changed on the server while it was being read/);
    // A weak ETag may not be used in If-Range: Last-Modified is sent instead when present,
    // and nothing when absent (then a change cannot be detected by the server).
    etag = () => `W/"v${version}"`;
    lastModified = "Mon, 23 Nov 2026 06:00:00 GMT";
    src = new HttpSource(url);
    await src.size();
    await src.read(0, 2);
    assert.equal(seenIfRange.at(-1), lastModified);
    lastModified = null;
    src = new HttpSource(url);
    await src.size();
    await src.read(0, 2);
    assert.equal(seenIfRange.at(-1), null);
  } finally {
    ac.abort();
    await server.finished;
  }
});
