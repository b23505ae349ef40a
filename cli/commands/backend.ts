// `vlmc backend [--backend NAME]`: starts the TensorFlow.js backend a run would use and says which,
// why, the tfjs version and, for wasm, its features (runtime/backend.ts).
import { type Command, Option } from "commander";
import { BACKEND_REQUESTS, BackendError, backendRequest, initBackend, type BackendRequest } from "../../runtime/backend.js";
import type { Io } from "../main.js";

const EXIT_OK = 0;
const EXIT_USAGE = 2;

/** `--backend NAME`, for every command that runs tfjs; read it with `backendRequest` (VLMC_BACKEND, then auto). */
export function backendOption(): Option {
  return new Option("--backend <name>", "TensorFlow.js backend (default: $VLMC_BACKEND, else auto: tfjs-node-gpu, then tfjs-node when installed, else wasm)").choices(
    BACKEND_REQUESTS,
  );
}

export function registerBackend(program: Command, io: Io, setCode: (code: number) => void): void {
  program
    .command("backend")
    .description("start the TensorFlow.js backend and say which one runs, and why")
    .addOption(backendOption())
    .action(async (opts: { backend?: BackendRequest }) => setCode(await runBackend(opts.backend, io)));
}

export async function runBackend(flag: string | undefined, io: Io): Promise<number> {
  let got;
  try {
    got = await initBackend(backendRequest(flag), { log: (line) => io.stdout(`${line}\n`) });
  } catch (err) {
    if (err instanceof BackendError) {
      io.stderr(`vlmc: error: ${err.message}\n`);
      return EXIT_USAGE;
    }
    throw err;
  }
  const v = got.versions;
  const node = v["tfjs-node"] ? `, tfjs-node ${v["tfjs-node"]}` : "";
  io.stdout(`tfjs: ${v.tfjs ?? v["tfjs-core"] ?? "unknown"} (tfjs-core ${v["tfjs-core"] ?? "unknown"}${node})\n`);
  if (got.wasm) {
    const w = got.wasm;
    const threads = w.threads ? `on (${w.threadsCount} threads)` : "off (tfjs runs wasm single-threaded in Node.js)";
    io.stdout(`wasm: SIMD ${w.simd ? "on" : "off"}, threads ${threads}, heap up to 4 GiB\n`);
    io.stdout(`wasm binary: ${w.dir}${w.binary}\n`);
  }
  if (got.native) {
    const n = got.native;
    io.stdout(n.matmul ? `native accelerator: matmul on (${n.isa}, ${n.threads} threads)\n` : `native accelerator: off (${n.reason})\n`);
  }
  return EXIT_OK;
}
