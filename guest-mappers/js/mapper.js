// The example Interstate mapper in JavaScript: the component entry point.
//
// Build with `./build.sh`. The policy itself lives in `lib/` and is tested with `node --test`;
// this file only wires it to the WIT imports of `interstate:mapper/host@0.1.0`.

import { log, verifyPassword } from "interstate:mapper/host@0.1.0";

import { makePolicy } from "./lib/policy.js";

/** The WIT export `interstate:mapper/policy@0.1.0`. */
export const policy = makePolicy({
  log,
  verifyPassword,
  // QuickJS reads the WASI wall clock for Date.now(); the TOTP window depends on it.
  nowSeconds: () => Date.now() / 1000,
});
