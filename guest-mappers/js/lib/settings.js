// Parsing and validation of the example mapper's settings.
//
// The operator's `mapper.settings` object arrives as JSON text. Every mistake is reported
// with the path of the offending key, because a `configure` error at start-up is all the
// operator sees.

import { base32Decode } from "./totp.js";

/** The longest desktop id the contract allows, in bytes. */
const MAX_ID_BYTES = 128;

/** A settings error: `path` names the key, `message` says what was expected. */
export class SettingsError extends Error {
  /**
   * @param {string} path
   * @param {string} message
   */
  constructor(path, message) {
    super(`${path}: ${message}`);
    this.name = "SettingsError";
  }
}

/**
 * @typedef {object} DesktopEntry
 * @property {string} id stable id derived from the host name
 * @property {string} name
 * @property {string} hostname
 * @property {number | null} agentPort
 */

/**
 * @typedef {object} User
 * @property {string} username
 * @property {string} passwordHash
 * @property {string[]} groups
 * @property {boolean} mfa
 * @property {Uint8Array | null} totpKey
 * @property {boolean} disabled
 */

/**
 * @typedef {object} Settings
 * @property {Map<string, User>} users by user name
 * @property {Map<string, DesktopEntry[]>} groups by group name
 * @property {string[]} domains
 * @property {string} logonDomain
 */

/**
 * Parses and validates the settings JSON.
 * @param {string} json
 * @returns {Settings}
 * @throws {SettingsError}
 */
export function parseSettings(json) {
  let raw;
  try {
    raw = JSON.parse(json);
  } catch (error) {
    throw new SettingsError("settings", `not valid JSON (${error.message})`);
  }
  const top = object(raw, "settings");
  allowKeys(top, "", ["users", "groups", "domains", "logon_domain"]);

  const groups = parseGroups(top.groups === undefined ? {} : top.groups);
  const domains = top.domains === undefined ? [] : stringList(top.domains, "domains");
  const logonDomain = top.logon_domain === undefined ? "" : string(top.logon_domain, "logon_domain");

  if (top.users === undefined) {
    throw new SettingsError("users", "missing (expected a list of users)");
  }
  if (!Array.isArray(top.users)) {
    throw new SettingsError("users", "expected a list of users");
  }
  const users = new Map();
  top.users.forEach((entry, index) => {
    const user = parseUser(entry, `users[${index}]`, groups);
    if (users.has(user.username)) {
      throw new SettingsError(`users[${index}].username`, `duplicate user "${user.username}"`);
    }
    users.set(user.username, user);
  });
  return { users, groups, domains, logonDomain };
}

/**
 * The desktops of a user: the union of its groups' desktops, in group order, without
 * duplicates.
 * @param {Settings} settings
 * @param {User} user
 * @returns {DesktopEntry[]}
 */
export function desktopsOf(settings, user) {
  const seen = new Set();
  const result = [];
  for (const group of user.groups) {
    for (const desktop of settings.groups.get(group) ?? []) {
      if (!seen.has(desktop.id)) {
        seen.add(desktop.id);
        result.push(desktop);
      }
    }
  }
  return result;
}

/**
 * The stable desktop id: the host name in lower case with every character other than a
 * letter, a digit or `-` replaced by `-` (`ws-art-1.example.com` -> `ws-art-1-example-com`).
 * Zero clients remember desktops by id, so it must not depend on list order.
 * @param {string} hostname
 * @returns {string}
 */
export function desktopId(hostname) {
  return hostname.toLowerCase().replace(/[^a-z0-9-]/g, "-");
}

function parseGroups(value) {
  const groupsObject = object(value, "groups");
  const groups = new Map();
  // Which desktop claimed each id, so that two different desktops cannot share one.
  const owners = new Map();
  for (const [groupName, desktops] of Object.entries(groupsObject)) {
    const groupPath = `groups.${groupName}`;
    if (!Array.isArray(desktops)) {
      throw new SettingsError(groupPath, "expected a list of desktops");
    }
    const entries = desktops.map((item, index) => {
      const path = `${groupPath}[${index}]`;
      const desktop = parseDesktop(item, path);
      const owner = owners.get(desktop.id);
      if (owner === undefined) {
        owners.set(desktop.id, { path, desktop });
      } else if (owner.desktop.name !== desktop.name || owner.desktop.agentPort !== desktop.agentPort) {
        throw new SettingsError(
          `${path}.hostname`,
          `desktop id "${desktop.id}" is already used by ${owner.path} with a different name or agent_port`,
        );
      }
      return desktop;
    });
    groups.set(groupName, entries);
  }
  return groups;
}

function parseDesktop(value, path) {
  const desktop = object(value, path);
  allowKeys(desktop, path, ["name", "hostname", "agent_port"]);
  const name = nonEmptyString(desktop.name, `${path}.name`);
  const hostname = nonEmptyString(desktop.hostname, `${path}.hostname`);
  if (!/^[A-Za-z0-9._:-]+$/.test(hostname)) {
    throw new SettingsError(`${path}.hostname`, "expected a host name or an IP address");
  }
  const id = desktopId(hostname);
  if (id.length > MAX_ID_BYTES) {
    throw new SettingsError(`${path}.hostname`, `longer than ${MAX_ID_BYTES} characters`);
  }
  let agentPort = null;
  if (desktop.agent_port !== undefined) {
    const port = desktop.agent_port;
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      throw new SettingsError(`${path}.agent_port`, "expected a port number between 1 and 65535");
    }
    agentPort = port;
  }
  return { id, name, hostname, agentPort };
}

function parseUser(value, path, groups) {
  const user = object(value, path);
  allowKeys(user, path, ["username", "password_hash", "groups", "mfa", "totp_secret", "disabled"]);
  const username = nonEmptyString(user.username, `${path}.username`);
  const passwordHash = nonEmptyString(user.password_hash, `${path}.password_hash`);
  const userGroups = user.groups === undefined ? [] : stringList(user.groups, `${path}.groups`);
  userGroups.forEach((group, index) => {
    if (!groups.has(group)) {
      throw new SettingsError(`${path}.groups[${index}]`, `unknown group "${group}"`);
    }
  });
  const mfa = user.mfa === undefined ? false : boolean(user.mfa, `${path}.mfa`);
  const disabled = user.disabled === undefined ? false : boolean(user.disabled, `${path}.disabled`);
  let totpKey = null;
  if (user.totp_secret !== undefined) {
    const secret = nonEmptyString(user.totp_secret, `${path}.totp_secret`);
    totpKey = base32Decode(secret);
    if (totpKey === null || totpKey.length === 0) {
      throw new SettingsError(`${path}.totp_secret`, "expected a base32 secret");
    }
  }
  if (mfa && totpKey === null) {
    throw new SettingsError(`${path}.totp_secret`, "missing (required when mfa is true)");
  }
  return { username, passwordHash, groups: userGroups, mfa, totpKey, disabled };
}

function object(value, path) {
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new SettingsError(path, "expected an object");
  }
  return value;
}

function allowKeys(value, path, allowed) {
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key)) {
      throw new SettingsError(
        path === "" ? key : `${path}.${key}`,
        `unknown key (expected one of: ${allowed.join(", ")})`,
      );
    }
  }
}

function string(value, path) {
  if (typeof value !== "string") {
    throw new SettingsError(path, "expected a string");
  }
  return value;
}

function nonEmptyString(value, path) {
  if (value === undefined) {
    throw new SettingsError(path, "missing (expected a non-empty string)");
  }
  if (typeof value !== "string" || value === "") {
    throw new SettingsError(path, "expected a non-empty string");
  }
  return value;
}

function boolean(value, path) {
  if (typeof value !== "boolean") {
    throw new SettingsError(path, "expected true or false");
  }
  return value;
}

function stringList(value, path) {
  if (!Array.isArray(value) || !value.every((item) => typeof item === "string")) {
    throw new SettingsError(path, "expected a list of strings");
  }
  return value;
}
