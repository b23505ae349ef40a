// Builds the native accelerator (native/src/*.cc -> native/build/vlmc_native.node) with the
// machine's C++ compiler. It runs from package.json's `install` script, so during `npm ci`,
// before TypeScript is compiled: plain JavaScript, Node's standard library and the two
// header-only npm packages (node-api-headers, node-addon-api) only.
//
// The accelerator is optional: vlmc runs on stock tfjs-wasm without it. So this script never
// fails the install. No compiler, a compile error, an unsupported platform: it prints one line
// saying the accelerator was not built and why, records the reason in build-info.json (the
// loader reports it), and exits 0. `VLMC_NATIVE=0` skips it; `--force` rebuilds even when the
// sources, compiler and Node ABI are unchanged (their hash is kept in build-info.json).
//
// One binary runs on any x86-64: the whole addon is built for the baseline ISA and the kernels
// pick AVX-512 or AVX2 at run time. Files named *_avx512.cc and *_avx2.cc are the only ones
// compiled with those ISAs enabled (they guard their code with the matching predefined macro,
// so on other architectures they compile to nothing).
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { availableParallelism } from "node:os";
import { delimiter, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const srcDir = join(here, "src");
// `--out DIR` builds elsewhere (the tests use it, so they never touch the real build).
const outAt = process.argv.indexOf("--out");
const outDir = outAt > 0 && process.argv[outAt + 1] ? resolve(process.argv[outAt + 1]) : join(here, "build");
// Per process, so two builds at once (two terminals, a test and an install) do not mix objects.
const objDir = join(outDir, `obj-${process.pid}`);
const target = join(outDir, "vlmc_native.node");
const infoFile = join(outDir, "build-info.json");
const logFile = join(outDir, "build.log");
const force = process.argv.includes("--force");
const quiet = process.argv.includes("--quiet");

const say = (line) => void process.stdout.write(`vlmc native: ${line}\n`);

const BASE_FLAGS = [
  "-O3",
  "-std=c++17",
  "-fPIC",
  "-pthread",
  "-fvisibility=hidden",
  "-fno-exceptions",
  // sqrt without the errno check, so that loops calling it vectorize (no kernel reads errno).
  "-fno-math-errno",
  "-DNAPI_VERSION=8",
  "-DNODE_ADDON_API_DISABLE_DEPRECATED",
  "-DNODE_ADDON_API_DISABLE_CPP_EXCEPTIONS",
  "-DNDEBUG",
];
// Per-file ISA flags, x86-64 only (the suffix before .cc picks them).
const ISA_FLAGS = {
  avx512: ["-mavx512f", "-mavx512dq", "-mavx512bw", "-mavx512vl", "-mavx2", "-mfma", "-mf16c"],
  avx2: ["-mavx2", "-mfma", "-mf16c"],
};

class NotBuilt extends Error {}

/** The first compiler found: $CXX, then c++, g++, clang++ on PATH; with its version line. */
function findCompiler() {
  const candidates = [process.env.CXX, "c++", "g++", "clang++"].filter((c) => c && c.trim());
  for (const cxx of candidates) {
    const r = spawnSync(cxx, ["--version"], { encoding: "utf8", timeout: 20000 });
    if (r.status === 0) return { cxx, version: r.stdout.split("\n")[0].trim() };
  }
  const pathDirs = (process.env.PATH ?? "").split(delimiter).filter(Boolean).length;
  throw new NotBuilt(`no C++ compiler found (tried ${candidates.join(", ")} on a PATH of ${pathDirs} folders; install g++ or set CXX)`);
}

function headerDirs() {
  const require = createRequire(import.meta.url);
  const dirs = [];
  for (const [pkg, sub] of [["node-api-headers", "include"], ["node-addon-api", ""]]) {
    let dir;
    try {
      dir = join(dirname(require.resolve(`${pkg}/package.json`)), sub);
    } catch {
      throw new NotBuilt(`the npm package ${pkg} is not installed (run npm ci)`);
    }
    dirs.push(dir);
  }
  return dirs;
}

function sources() {
  const files = readdirSync(srcDir).filter((f) => /\.(cc|h)$/.test(f)).sort();
  const cc = files.filter((f) => f.endsWith(".cc"));
  if (cc.length === 0) throw new NotBuilt(`no sources in ${srcDir}`);
  return { files, cc };
}

function flagsFor(file) {
  const m = /_(avx512|avx2)\.cc$/.exec(file);
  return m && process.arch === "x64" ? ISA_FLAGS[m[1]] : [];
}

function fingerprint(compiler, includes, files) {
  const h = createHash("sha256");
  h.update(JSON.stringify({ compiler, abi: process.versions.modules, napi: process.versions.napi, platform: process.platform, arch: process.arch, flags: BASE_FLAGS, isa: ISA_FLAGS }));
  h.update(readFileSync(fileURLToPath(import.meta.url)));
  for (const f of files) h.update(`\0${f}\0`).update(readFileSync(join(srcDir, f)));
  for (const dir of includes) {
    try {
      h.update(readFileSync(join(dir, "..", "package.json")));
    } catch {
      h.update(dir);
    }
  }
  return h.digest("hex").slice(0, 32);
}

function readInfo() {
  try {
    return JSON.parse(readFileSync(infoFile, "utf8"));
  } catch {
    return undefined;
  }
}

function writeInfo(info) {
  mkdirSync(outDir, { recursive: true });
  const tmp = `${infoFile}.tmp-${process.pid}`;
  writeFileSync(tmp, `${JSON.stringify(info, null, 2)}\n`);
  renameSync(tmp, infoFile);
}

function run(cmd, args) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (out += d));
    child.on("error", (err) => resolve({ code: -1, out: String(err.message) }));
    child.on("close", (code) => resolve({ code, out }));
  });
}

/** The first line of a compiler's output that is an error, for the one-line summary. */
function firstError(out) {
  const lines = out.split("\n");
  return (lines.find((l) => /\berror\b/i.test(l)) ?? lines.find((l) => l.trim()) ?? "no output").trim().slice(0, 300);
}

async function compileAll(cxx, includes, cc) {
  mkdirSync(objDir, { recursive: true });
  const incFlags = includes.map((d) => `-I${d}`);
  const jobs = Math.max(1, Math.min(availableParallelism(), cc.length));
  const log = [];
  let done = 0;
  let failure;
  const progress = () => {
    if (process.stdout.isTTY && !quiet) process.stdout.write(`\rvlmc native: compiling ${done}/${cc.length}`);
  };
  const queue = [...cc];
  const worker = async () => {
    for (let file; (file = queue.shift()) !== undefined && !failure; ) {
      const obj = join(objDir, file.replace(/\.cc$/, ".o"));
      const args = [...BASE_FLAGS, ...flagsFor(file), ...incFlags, "-c", join(srcDir, file), "-o", obj];
      const r = await run(cxx, args);
      log.push(`$ ${cxx} ${args.join(" ")}\n${r.out}`);
      if (r.code !== 0) failure ??= `${file} failed to compile: ${firstError(r.out)}`;
      done++;
      progress();
    }
  };
  progress();
  await Promise.all(Array.from({ length: jobs }, worker));
  if (process.stdout.isTTY && !quiet) process.stdout.write("\r\x1b[K");
  writeFileSync(logFile, log.join("\n"));
  if (failure) throw new NotBuilt(`${failure} (full log: ${logFile})`);
  return cc.map((f) => join(objDir, f.replace(/\.cc$/, ".o")));
}

async function link(cxx, objects) {
  // Ends in .node: require() picks the loader by extension.
  const tmp = join(outDir, `vlmc_native.tmp-${process.pid}.node`);
  const args = ["-shared", "-pthread", "-o", tmp, ...objects];
  const r = await run(cxx, args);
  writeFileSync(logFile, `${readFileSync(logFile, "utf8")}\n$ ${cxx} ${args.join(" ")}\n${r.out}`);
  if (r.code !== 0) {
    rmSync(tmp, { force: true });
    throw new NotBuilt(`linking failed: ${firstError(r.out)} (full log: ${logFile})`);
  }
  return tmp;
}

/** Loads the fresh binary in a child Node.js and asks it what it is: a build that loads is a build. */
function probe(file) {
  const code = `const m = require(${JSON.stringify(file)}); process.stdout.write(JSON.stringify(m.info()));`;
  const r = spawnSync(process.execPath, ["-e", code], { encoding: "utf8", timeout: 60000 });
  if (r.status !== 0) throw new NotBuilt(`the built addon does not load: ${(r.stderr || r.error?.message || "").split("\n").find((l) => /Error/.test(l)) ?? "unknown error"}`);
  return JSON.parse(r.stdout);
}

async function main() {
  if (process.env.VLMC_NATIVE === "0") {
    say("skipped (VLMC_NATIVE=0); vlmc runs on stock tfjs-wasm");
    return;
  }
  if (process.platform !== "linux") throw new NotBuilt(`${process.platform} is not supported yet (Linux only)`);
  if (process.arch !== "x64" && process.arch !== "arm64") throw new NotBuilt(`${process.arch} is not supported (x64 and arm64 only)`);
  const { cxx, version } = findCompiler();
  const includes = headerDirs();
  const { files, cc } = sources();
  const hash = fingerprint(version, includes, files);
  const before = readInfo();
  if (!force && before?.built && before.hash === hash && existsSync(target)) {
    if (!quiet) say(`up to date (${before.isa}, ${before.compiler})`);
    return;
  }
  const t0 = Date.now();
  if (!quiet) say(`compiling ${cc.length} files with ${version} ...`);
  const objects = await compileAll(cxx, includes, cc);
  const tmp = await link(cxx, objects);
  let info;
  try {
    info = probe(tmp);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
  renameSync(tmp, target);
  rmSync(objDir, { recursive: true, force: true });
  writeInfo({ built: true, hash, compiler: version, cxx, abi: process.versions.modules, isa: info.isa, threads: info.threads, seconds: (Date.now() - t0) / 1000 });
  say(`built ${target} in ${((Date.now() - t0) / 1000).toFixed(1)} s (${info.isa}, ${info.threads} threads)`);
}

try {
  await main();
} catch (err) {
  const why = err instanceof NotBuilt ? err.message : `unexpected error: ${err instanceof Error ? err.message : String(err)}`;
  try {
    rmSync(objDir, { recursive: true, force: true });
    // The loader reports why; a stale binary from an earlier build must not be taken for this one.
    rmSync(target, { force: true });
    writeInfo({ built: false, reason: why });
  } catch {
    // a read-only checkout: the line below is all there is
  }
  say(`accelerator not built: ${why}; vlmc runs on stock tfjs-wasm`);
}
process.exitCode = 0;
