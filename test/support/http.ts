// A real HTTP server on loopback serving a folder the way a boot server's web server does:
// symlinks followed, nothing outside the folder, every request logged for assertions.
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import fs from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";

export interface StaticServer {
  port: number;
  url: string;
  /** `path`: decoded, without the query; `target`: the request target exactly as sent. */
  requests: { path: string; status: number; target: string }[];
  close(): Promise<void>;
}

/** Answers a POST (the fixture Image Factory's `POST /schematics`): status and JSON body. */
export type PostHandler = (path: string, body: Buffer) => { status: number; json: unknown };

export async function serveFolder(root: string, onPost?: PostHandler): Promise<StaticServer> {
  const realRoot = await fs.realpath(root);
  const requests: StaticServer["requests"] = [];
  const server = http.createServer(async (req, res) => {
    const urlPath = decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname);
    const done = (status: number) => requests.push({ path: urlPath, status, target: req.url ?? "" });
    if (req.method === "POST" && onPost) {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      const answer = onPost(urlPath, Buffer.concat(chunks));
      res.writeHead(answer.status, { "content-type": "application/json" }).end(JSON.stringify(answer.json));
      done(answer.status);
      return;
    }
    try {
      const abs = path.join(root, urlPath);
      // Symlinks inside the tree resolve on the server, as with nginx/lighttpd defaults.
      const real = await fs.realpath(abs);
      const st = await fs.stat(real);
      if (!(real === realRoot || real.startsWith(realRoot + path.sep)) || !st.isFile()) throw new Error("not served");
      res.writeHead(200, { "content-length": st.size, "content-type": "application/octet-stream" });
      createReadStream(real).pipe(res);
      done(200);
    } catch {
      res.writeHead(404).end("not found\n");
      done(404);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** One image of a fixture Image Factory: `image/<schematic>/<version>/` holding these files' contents. */
export interface FactoryImage {
  schematic: string;
  version: string;
  kernel: string | Uint8Array;
  initramfs: string | Uint8Array;
  cmdline: string;
}

/**
 * A fixture Talos Image Factory (factory.talos.dev cannot be reached from the tests): the images
 * given, served by path as the factory does, and `POST /schematics` answered as the factory answers
 * a canonical schematic, with the sha256 of what it was sent (`answer` may say otherwise, for one).
 */
export async function serveFactory(dir: string, images: FactoryImage[], answer?: (path: string, body: Buffer) => { status: number; json: unknown } | undefined): Promise<StaticServer> {
  for (const image of images) {
    const at = path.join(dir, "image", image.schematic, image.version);
    await fs.mkdir(at, { recursive: true });
    await fs.writeFile(path.join(at, "kernel-amd64"), image.kernel);
    await fs.writeFile(path.join(at, "initramfs-amd64.xz"), image.initramfs);
    await fs.writeFile(path.join(at, "cmdline-metal-amd64"), image.cmdline);
  }
  return serveFolder(dir, (urlPath, body) => answer?.(urlPath, body) ?? { status: 201, json: { id: createHash("sha256").update(body).digest("hex") } });
}
