// Reading spec files from disk. A file that cannot be read at all (missing, a directory, no
// permission) is a `FileError` with a one-line message; whatever a readable file contains is
// the front end's business (diagnostics).
import { closeSync, openSync, readFileSync, readSync, statSync } from "node:fs";

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
  try {
    const st = statSync(path);
    if (st.isDirectory()) throw new FileError(path, `${path}: is a directory, not a file`);
    size = st.size;
  } catch (err) {
    if (err instanceof FileError) throw err;
    throw new FileError(path, `${path}: ${reason(err)}`);
  }
  try {
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
