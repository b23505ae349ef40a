// Paths inside the repository, for the scripts of tools/ and bench/ and for the tests: the
// root is the nearest folder above this file that holds package.json, so the same whether run
// from the sources or compiled (dist/tools/repo.js).
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

function findRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "package.json"))) {
    const up = dirname(dir);
    if (up === dir) throw new Error("repository root not found");
    dir = up;
  }
  return dir;
}

/** The repository root (an absolute path). */
export const repoRoot = findRoot();

/** A path inside the repository: `repoPath("docs", "errors.md")`. */
export function repoPath(...parts: string[]): string {
  return resolve(repoRoot, ...parts);
}

/** The bin file a user runs. */
export const vlmcBin = repoPath("bin", "vlmc.js");
