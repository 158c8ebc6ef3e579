// @ts-check
// The project's binaries as the tests run them: each with an environment of its own, its
// stderr in a log file, ready when its stdout prints a known line; stopped with SIGTERM, then
// SIGKILL if it does not stop in time.
"use strict";

const { spawn } = require("node:child_process");
const fs = require("node:fs");
const path = require("node:path");
const readline = require("node:readline");

const REPO_ROOT = path.resolve(__dirname, "..", "..");
const START_TIMEOUT_MS = 20_000;
const STOP_TIMEOUT_MS = 10_000;

/**
 * The binary `cargo build --bin NAME` made, wherever cargo was told to put it, unless the
 * environment variable `variable` names another (e.g. a copy, when other checkouts share the
 * target directory and rebuild it).
 * @param {string} name
 * @param {string} variable
 */
function binary(name, variable) {
  return process.env[variable] || path.resolve(REPO_ROOT, process.env.CARGO_TARGET_DIR || "target", "debug", name);
}

/**
 * The environment of a child: this process's, less every variable whose name starts with one
 * of `prefixes` (the shell's own settings must not leak into a test's program), plus `extra`.
 * @param {string[]} prefixes
 * @param {Record<string, string>} extra
 */
function cleanEnv(prefixes, extra) {
  const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !prefixes.some((prefix) => key.startsWith(prefix))));
  return { ...env, NO_COLOR: "1", ...extra };
}

/**
 * Starts `file` and resolves once a line of its stdout matches `ready`, with the match.
 * Rejects, having killed it, if it exits first or does not get there within the timeout.
 * @param {{ file: string, args?: string[], env: Record<string, string>, cwd?: string, logPath: string, ready: RegExp, timeoutMs?: number }} options
 */
async function startProgram({ file, args = [], env, cwd, logPath, ready, timeoutMs = START_TIMEOUT_MS }) {
  const name = path.basename(file);
  if (!fs.existsSync(file)) {
    throw new Error(`${file} does not exist: run \`cargo build --bin ${name}\` first`);
  }
  const log = fs.createWriteStream(logPath);
  const child = spawn(file, args, { env, cwd, stdio: ["ignore", "pipe", "pipe"] });
  child.stderr.pipe(log);
  /** @type {Promise<{ code: number | null, signal: string | null, error?: Error }>} */
  const exited = new Promise((resolve) => {
    child.once("exit", (code, signal) => resolve({ code, signal }));
    child.once("error", (error) => resolve({ code: null, signal: null, error }));
  });

  const lines = readline.createInterface({ input: child.stdout });
  let timer;
  const match = await Promise.race([
    /** @type {Promise<RegExpExecArray>} */ (
      new Promise((resolve) => {
        lines.on("line", (line) => {
          const found = ready.exec(line);
          if (found) resolve(found);
        });
      })
    ),
    exited.then(({ code, signal, error }) => {
      throw new Error(`${name} exited before it was ready (${error ?? `code ${code}, signal ${signal}`}); see ${logPath}`);
    }),
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${name} was not ready within ${timeoutMs} ms; see ${logPath}`)), timeoutMs);
    }),
  ])
    .catch((error) => {
      child.kill("SIGKILL");
      throw error;
    })
    .finally(() => clearTimeout(timer));

  return { child, exited, match, stop: () => stopProgram(child, exited) };
}

/**
 * SIGTERM, then SIGKILL if it has not stopped within STOP_TIMEOUT_MS.
 * @param {import("node:child_process").ChildProcess} child
 * @param {Promise<unknown>} exited
 */
async function stopProgram(child, exited) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill("SIGTERM");
  let timer;
  const stopped = await Promise.race([
    exited.then(() => true),
    new Promise((resolve) => (timer = setTimeout(() => resolve(false), STOP_TIMEOUT_MS))),
  ]);
  clearTimeout(timer);
  if (!stopped) {
    child.kill("SIGKILL");
    await exited;
  }
}

module.exports = { REPO_ROOT, binary, cleanEnv, startProgram };
