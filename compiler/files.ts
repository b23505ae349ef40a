// Reading spec files from disk. A file that cannot be read at all (missing, a directory, no
// permission) is a `FileError` with a one-line message; whatever a readable file contains is
// the front end's business (diagnostics).
import { closeSync, fsyncSync, openSync, readFileSync, readSync, renameSync, statSync, unlinkSync, writeSync } from "node:fs";
import { basename, dirname, join } from "node:path";

export class FileError extends Error {
  constructor(
    readonly path: string,
    message: string,
  ) {
    super(message);
    this.name = "FileError";
  }
}

/** The largest spec vlmc parses: a spec is a few KB; a generated 10,000-line one ~400 KB. */
export const MAX_SPEC_BYTES = 1024 * 1024;
/** How much of a too-large file is read, to show where it starts. */
const HEAD_BYTES = 4096;

export interface SpecBytes {
  bytes: Uint8Array;
  /** Set when the file is over MAX_SPEC_BYTES: `bytes` then holds only its head. */
  tooLarge?: number;
}

export function readSpecBytes(path: string): SpecBytes {
  let size: number;
  let regular: boolean;
  try {
    const st = statSync(path);
    if (st.isDirectory()) throw new FileError(path, `${path}: is a directory, not a file`);
    size = st.size;
    regular = st.isFile();
  } catch (err) {
    if (err instanceof FileError) throw err;
    throw new FileError(path, `${path}: ${reason(err)}`);
  }
  try {
    // A pipe or a device (`<(cmd)`, /dev/stdin, /dev/zero) has no size: read it up to the limit.
    if (!regular) return readBounded(path);
    if (size > MAX_SPEC_BYTES) {
      const fd = openSync(path, "r");
      try {
        const head = new Uint8Array(HEAD_BYTES);
        const n = readSync(fd, head, 0, HEAD_BYTES, 0);
        return { bytes: head.subarray(0, n), tooLarge: size };
      } finally {
        closeSync(fd);
      }
    }
    return { bytes: readFileSync(path) };
  } catch (err) {
    throw new FileError(path, `${path}: ${reason(err)}`);
  }
}

/** Reads at most MAX_SPEC_BYTES + 1 bytes; more makes the file too large, as for a big file. */
function readBounded(path: string): SpecBytes {
  const fd = openSync(path, "r");
  try {
    const buf = new Uint8Array(MAX_SPEC_BYTES + 1);
    let n = 0;
    for (let got = -1; got !== 0 && n < buf.length; n += got) got = readSync(fd, buf, n, buf.length - n, null);
    return n > MAX_SPEC_BYTES ? { bytes: buf.slice(0, HEAD_BYTES), tooLarge: n } : { bytes: buf.slice(0, n) };
  } finally {
    closeSync(fd);
  }
}

export function reason(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  switch (code) {
    case "ENOENT":
      return "no such file";
    case "EACCES":
    case "EPERM":
      return "permission denied";
    case "EISDIR":
      return "is a directory, not a file";
    case "ENOTDIR":
      return "a component of the path is not a directory";
    case "ELOOP":
      return "too many symbolic links";
    default:
      return (err as Error | undefined)?.message ?? String(err);
  }
}

/**
 * Writes a file atomically: to a temporary file in the same folder, flushed to disk, then renamed
 * over `path`; a reader sees the old file or the new one, never a part, and a crash leaves at
 * most a stray `.NAME.PID.RANDOM.tmp`. Throws on an I/O error (the temporary file is removed).
 */
export function writeFileAtomic(path: string, data: Uint8Array | string): void {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${Math.random().toString(36).slice(2, 10)}.tmp`);
  let fd: number | null = null;
  try {
    fd = openSync(tmp, "wx", 0o644);
    let written = 0;
    while (written < bytes.length) written += writeSync(fd, bytes, written, Math.min(1 << 30, bytes.length - written));
    fsyncSync(fd);
    closeSync(fd);
    fd = null;
    renameSync(tmp, path);
  } catch (err) {
    if (fd !== null) closeSync(fd);
    try {
      unlinkSync(tmp);
    } catch {
      // already gone
    }
    throw err;
  }
  // The rename itself is durable once the folder is flushed.
  fsyncDir(dir);
}

/** Flushes a folder's entries (a rename into it) to disk; best effort, not every platform can. */
export function fsyncDir(dir: string): void {
  try {
    const fd = openSync(dir, "r");
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // best effort
  }
}
