// Paths inside the repository, from compiled tests (dist/test/...) or sources alike.
export { repoPath, repoRoot, vlmcBin } from "../../tools/repo.js";
