// Runs a built mapper component in Node: jco transpiles it to core wasm plus JS glue, and the
// imports are the test host (`interstate:mapper/host`, `store`, `directory`) and the WASI
// preview2 shim, whose wasi:http makes real requests.

import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { setFlagsFromString } from "node:v8";

import * as shim from "@bytecodealliance/preview2-shim";

// QuickJS's core module uses extended constant expressions, which V8 in Node 20 still keeps
// behind a flag (on by default from Node 22). The flag must be set before compiling.
setFlagsFromString("--experimental-wasm-extended-const");

const HERE = dirname(fileURLToPath(import.meta.url));
const JCO = join(HERE, "..", "node_modules", ".bin", "jco");

function wasiImports() {
  const imports = {};
  for (const [pkg, interfaces] of Object.entries(shim)) {
    for (const [name, impl] of Object.entries(interfaces)) {
      if (!name.startsWith("_") && typeof impl === "object") {
        imports[`wasi:${pkg}/${name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`] = impl;
      }
    }
  }
  return imports;
}

// The directory is not used by the example policy: every call fails loudly.
const NO_DIRECTORY = Object.fromEntries(
  ["authenticate", "lookup", "groups", "changePassword"].map((name) => [
    name,
    () => {
      throw new Error(`the example policy called directory.${name}`);
    },
  ]),
);

// Transpiled and compiled once per component file; every load is a fresh instance, as in the broker.
const compiled = new Map();

function compile(wasmPath) {
  if (!existsSync(JCO)) {
    throw new Error(`jco is missing: run (cd ${join(HERE, "..")} && npm ci)`);
  }
  const out = mkdtempSync(join(tmpdir(), "mapper-transpiled-"));
  execFileSync(JCO, ["transpile", wasmPath, "-I", "async", "--name", "component", "-q", "-o", out], {
    stdio: ["ignore", "ignore", "inherit"],
  });
  const modules = new Map();
  return {
    glue: import(pathToFileURL(join(out, "component.js")).href),
    core: (name) => {
      if (!modules.has(name)) {
        modules.set(name, WebAssembly.compile(readFileSync(join(out, name))));
      }
      return modules.get(name);
    },
  };
}

/**
 * Instantiates a component with the test host's imports (see `test/host.js`).
 * @param {string} wasmPath
 * @param {ReturnType<import("./host.js").testHost>} host
 * @returns {Promise<object>} the `policy` export; `result` errors throw with `.payload`
 */
export async function loadComponent(wasmPath, host) {
  if (!compiled.has(wasmPath)) {
    compiled.set(wasmPath, compile(wasmPath));
  }
  const { glue, core } = compiled.get(wasmPath);
  const { instantiate } = await glue;
  const imports = {
    ...wasiImports(),
    "interstate:mapper/host": {
      log: (level, message) => host.log(level, message),
      verifyPassword: (password, hash) => host.verifyPassword(password, hash),
      hashPassword: (password) => host.hashPassword(password),
      verifyTotp: (secret, code) => host.verifyTotp(secret, code),
    },
    "interstate:mapper/store": {
      get: (key) => host.store.get(key) ?? undefined,
      set: (key, value, ttlMs) => host.store.set(key, value, ttlMs === undefined ? null : Number(ttlMs)),
      delete: (key) => host.values.delete(key),
      compareAndSwap: () => {
        throw new Error("the example policy called store.compare-and-swap");
      },
    },
    "interstate:mapper/directory": NO_DIRECTORY,
  };
  const instance = await instantiate(core, imports);
  return instance.policy ?? instance["interstate:mapper/policy@0.2.0"];
}
