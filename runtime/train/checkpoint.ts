// Checkpoints on disk: `RUN/checkpoints/<stage>-<global step, 8 digits>/` holding
// weights.safetensors, optimizer.safetensors, state.json and manifest.json (each other file's
// size and SHA-256). A checkpoint is written whole under `checkpoints/.tmp-<name>-<pid>/`, every
// file flushed, then the folder renamed into place: a folder with a checkpoint's name is complete,
// and anything else (a crash mid-write) is a `.tmp-*` folder that listing ignores and the next
// write clears. A checkpoint whose files do not match its manifest (disk corruption, a hand edit)
// is reported and passed over in favour of the previous one.
//
// Test hook (documented in docs/training.md, for tests only): VLMC_TEST_CRASH_AT=checkpoint-write:N
// kills this process with SIGKILL in the middle of writing its N-th checkpoint (after the weights,
// before the rest and the rename), as a power cut or `kill -9` would.
import { createHash } from "node:crypto";
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeSync } from "node:fs";
import { join } from "node:path";
import { fsyncDir } from "../../compiler/files.js";

export const CHECKPOINTS = "checkpoints";
export const MANIFEST = "manifest.json";
const NAME = /^([A-Za-z_][A-Za-z0-9_]*)-(\d{8,})$/;

export function checkpointName(stage: string, globalStep: number): string {
  return `${stage}-${String(globalStep).padStart(8, "0")}`;
}

export interface CheckpointEntry {
  name: string;
  path: string;
  stage: string;
  globalStep: number;
}

/** Complete checkpoints (by name), oldest first. */
export function listCheckpoints(runDir: string): CheckpointEntry[] {
  const dir = join(runDir, CHECKPOINTS);
  if (!existsSync(dir)) return [];
  const out: CheckpointEntry[] = [];
  for (const name of readdirSync(dir)) {
    const m = NAME.exec(name);
    if (!m || !statSync(join(dir, name)).isDirectory()) continue;
    out.push({ name, path: join(dir, name), stage: m[1]!, globalStep: Number(m[2]) });
  }
  return out.sort((a, b) => a.globalStep - b.globalStep || (a.name < b.name ? -1 : 1));
}

const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

let writes = 0;

function crashHook(at: string): void {
  const hook = process.env.VLMC_TEST_CRASH_AT;
  if (!hook) return;
  const [where, n] = hook.split(":");
  if (where === "checkpoint-write" && at === "mid" && Number(n) === writes) process.kill(process.pid, "SIGKILL");
}

function writeFlushed(path: string, bytes: Uint8Array): void {
  const fd = openSync(path, "wx", 0o644);
  try {
    let done = 0;
    while (done < bytes.length) done += writeSync(fd, bytes, done, bytes.length - done);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Writes a checkpoint of these files (name -> bytes) and returns its folder. */
export function writeCheckpoint(runDir: string, name: string, files: ReadonlyMap<string, Uint8Array>): string {
  writes++;
  const dir = join(runDir, CHECKPOINTS);
  mkdirSync(dir, { recursive: true });
  const tmp = join(dir, `.tmp-${name}-${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp);
  const manifest: Record<string, { bytes: number; sha256: string }> = {};
  let first = true;
  for (const [file, bytes] of files) {
    writeFlushed(join(tmp, file), bytes);
    manifest[file] = { bytes: bytes.length, sha256: sha256(bytes) };
    if (first) crashHook("mid");
    first = false;
  }
  writeFlushed(join(tmp, MANIFEST), new TextEncoder().encode(`${JSON.stringify({ files: manifest }, null, 2)}\n`));
  const final = join(dir, name);
  // The same name again (a resumed run re-reaching a step): the new one replaces it.
  if (existsSync(final)) rmSync(final, { recursive: true, force: true });
  renameSync(tmp, final);
  fsyncDir(dir);
  return final;
}

/** Null when every file matches the manifest, else what is wrong (one line). */
export function verifyCheckpoint(path: string): string | null {
  let manifest: { files: Record<string, { bytes: number; sha256: string }> };
  try {
    manifest = JSON.parse(readFileSync(join(path, MANIFEST), "utf8"));
    if (!manifest || typeof manifest.files !== "object") return "its manifest is not a checkpoint manifest";
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "ENOENT" ? "it has no manifest (incomplete)" : `its manifest cannot be read (${(err as Error).message})`;
  }
  for (const [file, want] of Object.entries(manifest.files)) {
    let bytes: Uint8Array;
    try {
      bytes = readFileSync(join(path, file));
    } catch {
      return `${file} is missing`;
    }
    if (bytes.length !== want.bytes) return `${file} has ${bytes.length} bytes, the manifest says ${want.bytes}`;
    if (sha256(bytes) !== want.sha256) return `${file} does not match its SHA-256 checksum`;
  }
  return null;
}

/** Reads a file of a verified checkpoint. */
export function readCheckpointFile(path: string, file: string): Uint8Array {
  const b = readFileSync(join(path, file));
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

/**
 * Deletes all but the newest `keep` checkpoints and `best` (a name, kept whatever its age), and
 * any `.tmp-*` folder a crash left. The last checkpoint of each finished stage is kept too: a
 * multi-stage recipe is judged stage by stage (`vlmc eval --checkpoint align`), and a stage's
 * end is where a user restarts a later stage from. A folder is renamed out of the way before it
 * is removed, so a crash during removal never leaves a checkpoint-named folder with some files
 * missing.
 */
export function pruneCheckpoints(runDir: string, keep: number, best: string | null): string[] {
  const all = listCheckpoints(runDir);
  const current = all.at(-1)?.stage;
  const stageEnds = new Set<string>();
  for (let i = 0; i < all.length; i++) if (all[i]!.stage !== current && all[i + 1]?.stage !== all[i]!.stage) stageEnds.add(all[i]!.name);
  const doomed = all.slice(0, Math.max(0, all.length - keep)).filter((c) => c.name !== best && !stageEnds.has(c.name));
  const dir = join(runDir, CHECKPOINTS);
  for (const c of doomed) {
    const gone = join(dir, `.tmp-delete-${c.name}`);
    renameSync(c.path, gone);
    rmSync(gone, { recursive: true, force: true });
  }
  if (existsSync(dir)) for (const name of readdirSync(dir)) if (name.startsWith(".tmp-") && !name.endsWith(`-${process.pid}`)) rmSync(join(dir, name), { recursive: true, force: true });
  return doomed.map((c) => c.name);
}
