/**
 * Answers a request for one file of a folder the way a hub or a bucket does for a checkpoint
 * read by `urlFiles`: a HEAD-less GET without Range gets 200 with the size only (the reader asks
 * for ranges next), `Range: bytes=a-b` gets 206 with those bytes, a start past the end 416.
 * Names with a `/` or a leading `.` are refused (no walking out of the folder).
 *
 * @module
 */

/** The response for `name` in `dir` (Deno file APIs), with `headers` added to every answer. */
export async function rangeFileResponse(
  dir: string,
  name: string,
  req: Request,
  headers: Record<string, string> = {},
): Promise<Response> {
  if (name.includes("/") || name.startsWith(".") || name === "") {
    return new Response("bad name", { status: 400, headers });
  }
  let file: Deno.FsFile;
  try {
    file = await Deno.open(`${dir}/${name}`);
  } catch {
    return new Response("not found", { status: 404, headers });
  }
  try {
    const size = (await file.stat()).size;
    const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.get("range") ?? "");
    if (!m) {
      return new Response(null, {
        status: 200,
        headers: { ...headers, "content-length": `${size}` },
      });
    }
    const start = Number(m[1]), end = Math.min(Number(m[2]), size - 1);
    if (start >= size) {
      return new Response(null, {
        status: 416,
        headers: { ...headers, "content-range": `bytes */${size}` },
      });
    }
    const body = new Uint8Array(end - start + 1);
    await file.seek(start, Deno.SeekMode.Start);
    for (let got = 0; got < body.length;) {
      const n = await file.read(body.subarray(got));
      if (n === null) throw new Error(`${name}: short read`);
      got += n;
    }
    return new Response(body, {
      status: 206,
      headers: { ...headers, "content-range": `bytes ${start}-${end}/${size}` },
    });
  } finally {
    file.close();
  }
}
