// Paths inside the repository, from compiled tests (dist/test/...) or sources alike.
import { fileURLToPath } from "node:url";
import { dirname, join, resolve } from "node:path";
import { existsSync } from "node:fs";

function findRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "package.json"))) {
    const up = dirname(dir);
    if (up === dir) throw new Error("repository root not found");
    dir = up;
  }
  return dir;
}

export const repoRoot = findRoot();

export function repoPath(...parts: string[]): string {
  return resolve(repoRoot, ...parts);
}

/** The bin file a user runs. */
export const vlmcBin = repoPath("bin", "vlmc.js");
