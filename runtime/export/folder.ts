// An export folder written whole or not at all (every `vlmc export` format): into a temporary
// sibling, each file flushed, the folder synced, then renamed over the destination, so a reader
// never sees half an export and an interrupted one leaves the older export in place. A folder
// cannot be renamed over a non-empty one, so the older export steps aside first and is put back
// if the rename fails.
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { fsyncDir } from "../../compiler/files.js";

/**
 * Writes `files` (name -> contents) as the folder `out`, replacing an older one. `onFile` is
 * called after each file with the bytes written so far and in all (progress for large exports).
 */
export function writeFolderAtomic(out: string, files: ReadonlyMap<string, Uint8Array | string>, onFile?: (written: number, total: number) => void): void {
  const parent = dirname(out);
  mkdirSync(parent, { recursive: true });
  const tmp = join(parent, `.${basename(out)}.${process.pid}.${Math.random().toString(36).slice(2, 10)}.tmp`);
  const old = `${tmp}.old`;
  const size = (d: Uint8Array | string) => (typeof d === "string" ? Buffer.byteLength(d) : d.byteLength);
  const total = [...files.values()].reduce((a, d) => a + size(d), 0);
  let written = 0;
  try {
    mkdirSync(tmp);
    for (const [name, data] of files) {
      if (name.includes("/")) mkdirSync(dirname(join(tmp, name)), { recursive: true }); // `pretrained/NAME/model.json`
      writeFileSync(join(tmp, name), data, { flush: true });
      written += size(data);
      onFile?.(written, total);
    }
    fsyncDir(tmp);
    if (existsSync(out)) renameSync(out, old);
    renameSync(tmp, out);
    fsyncDir(parent);
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    if (existsSync(old) && !existsSync(out)) renameSync(old, out);
    throw err;
  }
  rmSync(old, { recursive: true, force: true });
}
