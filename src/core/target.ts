// Deploy targets: where a built tree is served from. A target is a local folder or a folder on a
// boot server reached over SFTP, written as users already write them:
//   sftp://admin@boot.homelab.tel:2222/srv/http/nixos     (path absolute)
//   admin@boot.homelab.tel:/usb1-part1/http/nixos           (scp style; a relative path is from the login folder)
//   boot:/srv/tftp                                          (an ~/.ssh/config Host alias)
//   ./served  or  /srv/http/netboot                         (a local folder, relative to the inventory root)
// Parsing is pure; the SSH details a URL leaves out (user, port, keys) come from ~/.ssh/config.
import { quoted } from "./excerpt.ts";

export type TargetLocation =
  | { kind: "local"; path: string }
  | { kind: "sftp"; user: string | undefined; host: string; port: number | undefined; path: string };

export interface Target {
  name: string;
  location: TargetLocation;
  /** Class generations kept on the target for `rollback` (the current one included). */
  keep: number;
  /** As written, for messages. */
  spec: string;
  /** The access log of the web server serving the target, an absolute path on its machine (`discovered --target`). */
  accessLog?: string;
}

export type ParsedTarget = { ok: true; value: TargetLocation } | { ok: false; message: string; hint: string };

const HOST = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$|^\[[0-9a-fA-F:.]+\]$|^\d{1,3}(?:\.\d{1,3}){3}$/;
const USER = /^[A-Za-z0-9._][A-Za-z0-9._-]*$/;

function badPath(p: string): string | undefined {
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f-\x9f]/.test(p)) return "the path holds a control character";
  if (p.split("/").includes("..")) return "the path holds a `..` segment";
  // `//`, `/./` and the like name the root too (an SFTP server would otherwise get ".", the login folder).
  if ((p === "" || p.startsWith("/")) && p.split("/").every((s) => s === "" || s === ".")) return "the path is the root of the file system";
  return undefined;
}

function remote(user: string | undefined, host: string, port: number | undefined, p: string): ParsedTarget {
  if (user !== undefined && !USER.test(user)) return { ok: false, message: `${quoted(user)} is not a user name`, hint: "e.g. admin@boot.example.org:/srv/http/netboot" };
  if (!HOST.test(host)) return { ok: false, message: `${quoted(host)} is not a host name`, hint: "a DNS name, an IP address, or a Host alias from ~/.ssh/config" };
  if (port !== undefined && !(port >= 1 && port <= 65535)) return { ok: false, message: `port ${port} is out of range`, hint: "1–65535" };
  const why = badPath(p);
  if (why) return { ok: false, message: why, hint: "name the folder the boot server's web server serves, e.g. /srv/http/netboot" };
  return { ok: true, value: { kind: "sftp", user, host: host.replace(/^\[|\]$/g, ""), port, path: p.replace(/\/+$/, "") || "." } };
}

export function parseTarget(spec: string): ParsedTarget {
  const url = /^sftp:\/\/(?:([^@/]+)@)?(\[[^\]]+\]|[^:/]+)(?::(\d+))?(\/.*)?$/.exec(spec);
  if (spec.startsWith("sftp:")) {
    if (!url) return { ok: false, message: `${quoted(spec)} is not an sftp:// URL`, hint: "sftp://user@host:port/path, e.g. sftp://admin@boot.example.org/srv/http/netboot" };
    let path: string;
    try {
      path = decodeURIComponent(url[4] ?? "");
    } catch {
      return { ok: false, message: `${quoted(spec)} holds a %-escape that is not one`, hint: "write a % in a path as %25" };
    }
    return remote(url[1], url[2]!, url[3] === undefined ? undefined : Number(url[3]), path);
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(spec)) return { ok: false, message: `${quoted(spec)}: only sftp:// and local folders are supported`, hint: "sftp://user@host/path, user@host:/path, or a folder" };
  // scp style: [user@]host:path, where host holds no slash (a local path like ./a:b does not match).
  const scp = /^(?:([^@/:]+)@)?([^/:@]+):(.*)$/.exec(spec);
  if (scp) return remote(scp[1], scp[2]!, undefined, scp[3]!);
  const why = badPath(spec);
  if (why) return { ok: false, message: why, hint: "a folder the boot server's web server serves, e.g. /srv/http/netboot" };
  return { ok: true, value: { kind: "local", path: spec } };
}

export function describeTarget(location: TargetLocation): string {
  if (location.kind === "local") return location.path;
  const user = location.user ? `${location.user}@` : "";
  const port = location.port ? `:${location.port}` : "";
  return `sftp://${user}${location.host}${port}${location.path.startsWith("/") ? "" : "/~/"}${location.path}`;
}
