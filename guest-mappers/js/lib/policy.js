// The example policy, independent of the component bindings.
//
// `makePolicy` receives the host's services as plain functions, so the same code runs inside
// the component (wired to the WIT imports by `mapper.js`) and under `node --test`.

import { utf8Decode, utf8Encode } from "./bytes.js";
import { POWER_OPERATIONS, powerOperation } from "./power.js";
import { desktopsOf, parseSettings } from "./settings.js";

/** Wrong codes allowed before the login is refused. */
export const MAX_CODE_ATTEMPTS = 3;

/** The prompt of the one-time-code dialog. */
export const CODE_PROMPT = "Enter the 6-digit code from your authenticator app";

/** The dialog error after a wrong code. */
export const WRONG_CODE_TEXT = "Wrong code, try again";

/** The dialog error after a code that was already used. */
export const REPLAYED_CODE_TEXT = "That code was already used, wait for the next one";

/** The one field of the code dialog. */
export const CODE_FIELDS = [{ id: "code", label: "Code", kind: "secret" }];

/** The buttons of the code dialog. */
export const CODE_BUTTONS = [
  { id: "ok", label: "Verify", isDefault: true },
  { id: "cancel", label: "Cancel", isDefault: false },
];

/** How long the store remembers a user's last desktop: 30 days, in milliseconds. */
export const LAST_DESKTOP_TTL_MS = 30 * 24 * 60 * 60 * 1000;

/** The store key of a user's changed password hash. */
export const passwordHashKey = (username) => `password-hash:${username}`;

/** The store key of the desktop a user last launched. */
export const lastDesktopKey = (username) => `last-desktop:${username}`;

// A well-formed ILS hash of a throw-away password, checked for unknown users so that a login with an
// unknown name costs the same host time as one with a wrong password.
const DECOY_HASH = "9f70564e7357585cee52b79fa889026721f9eef260bca0ac64a5a549039e919b";

const MISMATCHED_STEP = "step answer does not match the pending step";

/**
 * The host's services as plain functions. The store's functions return the ok value and throw
 * the WIT `store.error` variant (`{tag, val}`); `http` throws on a transport error.
 * @typedef {object} Host
 * @property {(level: string, message: string) => void} log
 * @property {(password: string, hash: string) => boolean} verifyPassword
 * @property {(password: string) => string} hashPassword
 * @property {(secret: string, code: string) => "accepted" | "rejected" | "replayed"} verifyTotp
 * @property {{get: (key: string) => Uint8Array | null,
 *             set: (key: string, value: Uint8Array, ttlMs: number | null) => void}} store
 * @property {import("./power.js").Http} http
 */

/**
 * Builds the object exported as the WIT interface `policy`.
 * @param {Host} host
 */
export function makePolicy(host) {
  /** @type {import("./settings.js").Settings | null} */
  let settings = null;

  function current() {
    if (settings === null) {
      throw "configure was not called";
    }
    return settings;
  }

  function accept(user) {
    return {
      tag: "accepted",
      val: {
        username: user.username,
        domain: current().logonDomain,
        attributes: [{ key: "groups", value: user.groups.join(",") }],
      },
    };
  }

  function challenge(username, attempts, errorText) {
    return {
      tag: "challenge",
      val: {
        prompt: CODE_PROMPT,
        errorText,
        fields: CODE_FIELDS,
        buttons: CODE_BUTTONS,
        state: JSON.stringify({ user: username, stage: "code", attempts }),
      },
    };
  }

  // Step 5, once the password is right: the disclaimer, then the code, then in.
  function afterPassword(user) {
    const s = current();
    if (s.disclaimer !== null) {
      return {
        tag: "disclaimer",
        val: { text: s.disclaimer, state: JSON.stringify({ user: user.username, stage: "disclaimer" }) },
      };
    }
    return afterDisclaimer(user);
  }

  function afterDisclaimer(user) {
    return user.mfa ? challenge(user.username, 0, "") : accept(user);
  }

  function decide(outcome, username) {
    host.log("info", `user ${JSON.stringify(username)}: ${verdict(outcome)}`);
    return outcome;
  }

  // The user's changed password hash, or null when the password was never changed. Throws a
  // string describing a store failure.
  function storedHash(username) {
    let value;
    try {
      value = host.store.get(passwordHashKey(username));
    } catch (error) {
      throw `store: ${describeStoreError(error)}`;
    }
    if (value === null || value === undefined) {
      return null;
    }
    const hash = utf8Decode(value);
    if (hash === null) {
      throw `store: the value of ${JSON.stringify(passwordHashKey(username))} is not UTF-8`;
    }
    return hash;
  }

  // Step 3, once the password is right: a disabled user or one without desktops is refused.
  function refusal(user) {
    if (user.disabled) {
      return reject("access-denied", "account disabled");
    }
    if (desktopsOf(current(), user).length === 0) {
      return reject("no-resources", "no desktops in the user's groups");
    }
    return null;
  }

  function userFor(identity) {
    const user = current().users.get(identity.username);
    return user === undefined || user.disabled ? null : user;
  }

  function lastDesktop(username) {
    try {
      const value = host.store.get(lastDesktopKey(username));
      return value === null || value === undefined ? null : utf8Decode(value);
    } catch (error) {
      host.log("warn", `user ${JSON.stringify(username)}: last desktop not read: ${describeStoreError(error)}`);
      return null;
    }
  }

  function pendingStep(state) {
    const pending = parseState(state);
    const user = current().users.get(pending.user);
    return { pending, user: user === undefined || user.disabled ? null : user };
  }

  return {
    configure(settingsJson) {
      try {
        settings = parseSettings(settingsJson);
      } catch (error) {
        throw error instanceof Error ? error.message : String(error);
      }
    },

    domains() {
      return current().domains;
    },

    authenticate(login) {
      const s = current();
      const user = s.users.get(login.username);
      if (user === undefined) {
        host.verifyPassword(login.password, DECOY_HASH);
        return decide(reject("bad-credentials", "unknown user"), login.username);
      }
      const changed = storedHash(user.username);
      if (!host.verifyPassword(login.password, changed ?? user.passwordHash)) {
        return decide(reject("bad-credentials", "wrong password"), user.username);
      }
      const refused = refusal(user);
      if (refused !== null) {
        return decide(refused, user.username);
      }
      if (user.passwordExpired && changed === null) {
        return decide(reject("expired-password", "password expired"), user.username);
      }
      return decide(afterPassword(user), user.username);
    },

    continueAuthentication(state, answer, _client) {
      const { pending, user } = pendingStep(state);
      const expected = answer.tag === "disclaimer-accepted" ? "disclaimer" : "code";
      if (pending.stage !== expected) {
        throw MISMATCHED_STEP;
      }
      if (user === null || (pending.stage === "code" && (!user.mfa || user.totpSecret === null))) {
        return decide(reject("access-denied", "user no longer allowed to log in"), pending.user);
      }
      if (pending.stage === "disclaimer") {
        return decide(afterDisclaimer(user), user.username);
      }
      const dialog = answer.val;
      if (dialog.buttonId === "cancel") {
        return decide(reject("access-denied", "code dialog cancelled"), user.username);
      }
      const field = dialog.fields.find((f) => f.id === "code");
      const verdict = host.verifyTotp(user.totpSecret, field === undefined ? "" : field.value);
      if (verdict === "accepted") {
        return decide(accept(user), user.username);
      }
      const attempts = pending.attempts + 1;
      if (attempts >= MAX_CODE_ATTEMPTS) {
        return decide(reject("bad-credentials", `${attempts} wrong codes`), user.username);
      }
      const replayed = verdict === "replayed";
      host.log(
        "info",
        `user ${JSON.stringify(user.username)}: ${replayed ? "replayed" : "wrong"} code ` +
          `(attempt ${attempts} of ${MAX_CODE_ATTEMPTS})`,
      );
      return challenge(user.username, attempts, replayed ? REPLAYED_CODE_TEXT : WRONG_CODE_TEXT);
    },

    listDesktops(identity, _client) {
      const s = current();
      const user = userFor(identity);
      // Looked up again rather than trusting the attributes: settings may have changed since login.
      const desktops = user === null ? [] : desktopsOf(s, user);
      const last = lastDesktop(identity.username);
      const first = desktops.findIndex((d) => d.id === last);
      const ordered = first > 0 ? [desktops[first], ...desktops.filter((_, i) => i !== first)] : desktops;
      host.log("info", `user ${JSON.stringify(identity.username)}: ${ordered.length} desktop(s)`);
      return ordered.map((d) => ({
        id: d.id,
        name: d.name,
        hostname: d.hostname,
        agentPort: d.agentPort,
        sessionKind: "vdi",
        state: "unknown",
        operations: s.powerApi === null ? [] : POWER_OPERATIONS,
      }));
    },

    allocate(identity, desktopId, _client) {
      const user = userFor(identity);
      const desktop = user === null ? undefined : desktopsOf(current(), user).find((d) => d.id === desktopId);
      if (desktop === undefined) {
        host.log(
          "info",
          `user ${JSON.stringify(identity.username)}: refused desktop ${JSON.stringify(desktopId)}`,
        );
        return {
          tag: "refused",
          val: ["unknown-desktop", `${JSON.stringify(desktopId)} is not one of the user's desktops`],
        };
      }
      try {
        host.store.set(lastDesktopKey(identity.username), utf8Encode(desktop.id), LAST_DESKTOP_TTL_MS);
      } catch (error) {
        host.log(
          "warn",
          `user ${JSON.stringify(identity.username)}: last desktop not kept: ${describeStoreError(error)}`,
        );
      }
      host.log("info", `user ${JSON.stringify(identity.username)}: launch on ${desktop.hostname}`);
      return {
        tag: "launch",
        val: { hostname: desktop.hostname, agentPort: desktop.agentPort, username: null, domain: null },
      };
    },

    operate(identity, desktopId, op, _client) {
      const s = current();
      const who = `user ${JSON.stringify(identity.username)}`;
      if (s.powerApi === null) {
        host.log("info", `${who}: ${op} unsupported (no power_api)`);
        return { tag: "unsupported" };
      }
      const user = userFor(identity);
      const desktop = user === null ? undefined : desktopsOf(s, user).find((d) => d.id === desktopId);
      if (desktop === undefined) {
        host.log("info", `${who}: ${op} refused on unknown desktop ${JSON.stringify(desktopId)}`);
        return { tag: "refused", val: "unknown desktop" };
      }
      const outcome = powerOperation(host.http, s.powerApi, desktop.hostname, op);
      host.log("info", `${who}: ${op} on ${desktop.hostname}: ${outcome.tag} (${outcome.val})`);
      return outcome;
    },

    changePassword(change) {
      const s = current();
      const user = s.users.get(change.username);
      const who = `user ${JSON.stringify(change.username)}`;
      const refuse = (kind, reason) => {
        host.log("info", `${who}: password change rejected (${kind}: ${reason})`);
        return { tag: "rejected", val: { kind, reason } };
      };
      if (user === undefined) {
        host.verifyPassword(change.oldPassword, DECOY_HASH);
        return refuse("wrong-password", "unknown user");
      }
      let changed;
      try {
        changed = storedHash(user.username);
      } catch (error) {
        return refuse("directory-error", String(error));
      }
      if (!host.verifyPassword(change.oldPassword, changed ?? user.passwordHash)) {
        return refuse("wrong-password", "wrong password");
      }
      if ([...change.newPassword].length < s.minPasswordLength) {
        return refuse("weak-password", `the new password is shorter than ${s.minPasswordLength} characters`);
      }
      if (sameSecret(change.newPassword, change.oldPassword)) {
        return refuse("weak-password", "the new password is the old one");
      }
      try {
        host.store.set(passwordHashKey(user.username), utf8Encode(host.hashPassword(change.newPassword)), null);
      } catch (error) {
        return refuse("directory-error", `store: ${describeStoreError(error)}`);
      }
      // What a login answers after a right password: a disabled user or one without desktops is
      // still refused, as the login would.
      const next = refusal(user) ?? afterPassword(user);
      host.log("info", `${who}: password changed, then ${verdict(next)}`);
      return { tag: "changed", val: next };
    },
  };
}

function reject(kind, reason) {
  return { tag: "rejected", val: { kind, reason } };
}

/** An auth outcome as the log names it. */
function verdict(outcome) {
  return outcome.tag === "rejected" ? `rejected (${outcome.val.kind}: ${outcome.val.reason})` : outcome.tag;
}

/** Whether two secrets are equal, in time that depends only on their lengths. */
function sameSecret(a, b) {
  const x = utf8Encode(a);
  const y = utf8Encode(b);
  let diff = x.length ^ y.length;
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    diff |= (x[i] ?? 0) ^ (y[i] ?? 0);
  }
  return diff === 0;
}

/**
 * The WIT `store.error` variant (or anything else thrown) as a log text. Some bindings
 * (componentize-js) throw an `Error` whose `payload` is the variant.
 */
function describeStoreError(thrown) {
  const error = thrown !== null && typeof thrown === "object" && "payload" in thrown ? thrown.payload : thrown;
  if (error !== null && typeof error === "object" && typeof error.tag === "string") {
    return error.val === undefined ? error.tag : `${error.tag}: ${error.val}`;
  }
  return error instanceof Error ? error.message : String(error);
}

function parseState(state) {
  let parsed;
  try {
    parsed = JSON.parse(state);
  } catch {
    throw "step state is not valid JSON";
  }
  const valid =
    parsed !== null &&
    typeof parsed === "object" &&
    typeof parsed.user === "string" &&
    (parsed.stage === "disclaimer" ||
      (parsed.stage === "code" && Number.isInteger(parsed.attempts) && parsed.attempts >= 0));
  if (!valid) {
    throw "step state is malformed";
  }
  return parsed;
}
