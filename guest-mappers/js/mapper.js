// The example Interstate mapper in JavaScript: the component entry point.
//
// Build with `./build.sh`. The policy itself lives in `lib/` and is tested with `node --test`;
// this file only wires it to the WIT imports of `interstate:mapper@0.2.0` and `wasi:http`.

import { hashPassword, log, verifyPassword, verifyTotp } from "interstate:mapper/host@0.2.0";
import { get, set } from "interstate:mapper/store@0.2.0";

import { makePolicy } from "./lib/policy.js";
import { httpRequest } from "./wasi-http.js";

/** The WIT export `interstate:mapper/policy@0.2.0`. */
export const policy = makePolicy({
  log,
  verifyPassword,
  hashPassword,
  verifyTotp,
  store: { get, set },
  http: httpRequest,
});
