// The example policy, independent of the component bindings.
//
// `makePolicy` receives the host's services as plain functions, so the same code runs inside
// the component (wired to the WIT imports by `mapper.js`) and under `node --test`.

import { desktopsOf, parseSettings } from "./settings.js";
import { verifyTotp } from "./totp.js";

/** Wrong codes allowed before the login is refused. */
export const MAX_CODE_ATTEMPTS = 3;

/** The prompt of the one-time-code dialog. */
export const CODE_PROMPT = "Enter the 6-digit code from your authenticator app";

/** The dialog error after a wrong code. */
export const WRONG_CODE_TEXT = "Wrong code, try again";

// A well-formed ILS hash of a throw-away password, checked for unknown users so that a login with an
// unknown name costs the same host time as one with a wrong password.
const DECOY_HASH = "9f70564e7357585cee52b79fa889026721f9eef260bca0ac64a5a549039e919b";

/**
 * @typedef {object} Host
 * @property {(level: string, message: string) => void} log
 * @property {(password: string, hash: string) => boolean} verifyPassword
 * @property {() => number} nowSeconds Unix time in seconds, from the wall clock
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
    const s = current();
    return {
      tag: "accepted",
      val: {
        username: user.username,
        domain: s.logonDomain,
        attributes: [{ key: "groups", value: user.groups.join(",") }],
      },
    };
  }

  function reject(kind, reason) {
    return { tag: "rejected", val: { kind, reason } };
  }

  function challenge(username, attempts, errorText) {
    return {
      tag: "challenge",
      val: {
        prompt: CODE_PROMPT,
        errorText,
        fields: [{ id: "code", label: "Code", kind: "secret" }],
        state: JSON.stringify({ user: username, attempts }),
      },
    };
  }

  function decide(outcome, username) {
    const detail = outcome.tag === "rejected" ? ` (${outcome.val.kind}: ${outcome.val.reason})` : "";
    host.log("info", `user ${JSON.stringify(username)}: ${outcome.tag}${detail}`);
    return outcome;
  }

  function userFor(identity) {
    const user = current().users.get(identity.username);
    return user === undefined || user.disabled ? null : user;
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
      if (!host.verifyPassword(login.password, user.passwordHash)) {
        return decide(reject("bad-credentials", "wrong password"), user.username);
      }
      if (user.disabled) {
        return decide(reject("access-denied", "account disabled"), user.username);
      }
      if (desktopsOf(s, user).length === 0) {
        return decide(reject("no-resources", "no desktops in the user's groups"), user.username);
      }
      if (user.mfa) {
        return decide(challenge(user.username, 0, ""), user.username);
      }
      return decide(accept(user), user.username);
    },

    continueAuthentication(state, answers, _client) {
      const s = current();
      const pending = parseState(state);
      const user = s.users.get(pending.user);
      if (user === undefined || user.disabled || !user.mfa || user.totpKey === null) {
        return decide(reject("access-denied", "user no longer allowed to log in"), pending.user);
      }
      const answer = answers.find((a) => a.id === "code");
      const code = answer === undefined ? "" : answer.value;
      if (verifyTotp(user.totpKey, code, host.nowSeconds())) {
        return decide(accept(user), user.username);
      }
      const attempts = pending.attempts + 1;
      if (attempts >= MAX_CODE_ATTEMPTS) {
        return decide(reject("bad-credentials", `${attempts} wrong codes`), user.username);
      }
      host.log(
        "info",
        `user ${JSON.stringify(user.username)}: wrong code (attempt ${attempts} of ${MAX_CODE_ATTEMPTS})`,
      );
      return challenge(user.username, attempts, WRONG_CODE_TEXT);
    },

    listDesktops(identity, _client) {
      const user = userFor(identity);
      // Looked up again rather than trusting the attributes: settings may have changed since login.
      const desktops = user === null ? [] : desktopsOf(current(), user);
      host.log("info", `user ${JSON.stringify(identity.username)}: ${desktops.length} desktop(s)`);
      return desktops.map((d) => ({
        id: d.id,
        name: d.name,
        hostname: d.hostname,
        agentPort: d.agentPort,
        sessionKind: "vdi",
        state: "unknown",
        operations: [],
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
      host.log("info", `user ${JSON.stringify(identity.username)}: launch on ${desktop.hostname}`);
      return {
        tag: "launch",
        val: { hostname: desktop.hostname, agentPort: desktop.agentPort, username: null, domain: null },
      };
    },
  };
}

function parseState(state) {
  let parsed;
  try {
    parsed = JSON.parse(state);
  } catch {
    throw "challenge state is not valid JSON";
  }
  if (
    parsed === null ||
    typeof parsed !== "object" ||
    typeof parsed.user !== "string" ||
    !Number.isInteger(parsed.attempts) ||
    parsed.attempts < 0
  ) {
    throw "challenge state is malformed";
  }
  return parsed;
}
