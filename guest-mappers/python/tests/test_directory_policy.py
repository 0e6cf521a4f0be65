import json
import unittest

from directory_example.policy import (
    Accepted,
    Directory,
    DirectoryFailure,
    DirectoryPolicy,
    Launch,
    MapperFailure,
    PasswordRejected,
    Refused,
    Rejected,
    SettingsError,
    User,
)

PORT_ZERO = {"name": "A", "hostname": "h", "agent_port": 0}

SETTINGS = {
    "profile": "corp",
    "logon_domain": "CORP",
    "domains": ["CORP"],
    "groups": {
        "Artists": [{"name": "Art 1", "hostname": "ws-art-1.example.com", "agent_port": 60444}],
        "staff": [
            {"name": "Art 1", "hostname": "ws-art-1.example.com"},
            {"name": "Office", "hostname": "office.example.com"},
        ],
    },
}


class FakeDirectory:
    """A directory of one profile ``corp``: users, passwords, groups and scripted failures."""

    def __init__(self) -> None:
        self.passwords = {"alice": "alice-pw", "bob": "bob-pw"}
        self.member_of = {"alice": ["artists", "staff"], "bob": ["nobody"]}
        self.failure: str | None = None
        self.calls: list[tuple[str, ...]] = []

    def _check(self, profile: str) -> None:
        if profile != "corp":
            raise DirectoryFailure("unknown-profile", profile)
        if self.failure is not None:
            raise DirectoryFailure(self.failure, "scripted")

    def authenticate(self, profile: str, username: str, password: str) -> User:
        self.calls.append(("authenticate", username))
        self._check(profile)
        if not password or self.passwords.get(username) != password:
            raise DirectoryFailure("wrong-password", "invalidCredentials")
        return User(dn=f"uid={username},ou=people,dc=example,dc=org", login=username)

    def groups(self, profile: str, username: str) -> list[str]:
        self.calls.append(("groups", username))
        self._check(profile)
        return self.member_of.get(username, [])

    def change_password(self, profile: str, username: str, old: str, new: str) -> None:
        self.calls.append(("change-password", username))
        self._check(profile)
        if self.passwords.get(username) != old:
            raise DirectoryFailure("wrong-password", "invalidCredentials")
        if len(new) < 8:
            raise DirectoryFailure("weak-password", "too short")
        self.passwords[username] = new


class DirectoryPolicyTest(unittest.TestCase):
    def setUp(self) -> None:
        self.fake = FakeDirectory()
        self.lines: list[str] = []
        directory = Directory(self.fake.authenticate, self.fake.groups, self.fake.change_password)
        self.policy = DirectoryPolicy(directory, lambda level, m: self.lines.append(f"{level} {m}"))
        self.policy.configure(json.dumps(SETTINGS))

    def test_alice_is_accepted_with_the_logon_domain(self) -> None:
        self.assertEqual(self.policy.domains(), ["CORP"])
        self.assertEqual(
            self.policy.authenticate("alice", "alice-pw"),
            Accepted("alice", "CORP", [("dn", "uid=alice,ou=people,dc=example,dc=org")]),
        )

    def test_desktops_are_the_union_of_the_groups_case_insensitively(self) -> None:
        desktops = self.policy.list_desktops("alice")
        self.assertEqual(
            [(d.id, d.agent_port) for d in desktops],
            [("ws-art-1-example-com", 60444), ("office-example-com", None)],
        )
        self.assertEqual(
            self.policy.allocate("alice", "office-example-com"),
            Launch("office.example.com", None),
        )
        self.assertIsInstance(self.policy.allocate("bob", "office-example-com"), Refused)

    def test_failures_map_to_rejections(self) -> None:
        cases = {
            "wrong-password": "bad-credentials",
            "password-expired": "expired-password",
            "must-change-password": "expired-password",
            "account-disabled": "access-denied",
            "account-expired": "access-denied",
            "locked-out": "access-denied",
            "outside-logon-hours": "access-denied",
        }
        for failure, kind in cases.items():
            with self.subTest(failure=failure):
                self.fake.failure = failure
                self.assertEqual(
                    self.policy.authenticate("alice", "alice-pw"), Rejected(kind, failure)
                )
        self.fake.failure = None
        self.assertEqual(self.policy.authenticate("alice", "nope").kind, "bad-credentials")
        for line in self.lines:
            self.assertNotIn("-pw", line)
            self.assertNotIn("nope", line)

    def test_an_unreachable_directory_is_a_mapper_failure(self) -> None:
        self.fake.failure = "unreachable"
        with self.assertRaises(MapperFailure):
            self.policy.authenticate("alice", "alice-pw")
        with self.assertRaises(MapperFailure):
            self.policy.list_desktops("alice")

    def test_a_user_without_desktops_gets_no_resources(self) -> None:
        self.assertEqual(self.policy.authenticate("bob", "bob-pw").kind, "no-resources")

    def test_change_password_logs_in_with_the_new_password(self) -> None:
        self.assertEqual(
            self.policy.change_password("alice", "wrong", "new-password-1"),
            PasswordRejected("wrong-password", "wrong-password"),
        )
        self.assertEqual(
            self.policy.change_password("alice", "alice-pw", "short"),
            PasswordRejected("weak-password", "weak-password"),
        )
        outcome = self.policy.change_password("alice", "alice-pw", "new-password-1")
        self.assertIsInstance(outcome, Accepted)
        self.assertEqual(self.fake.passwords["alice"], "new-password-1")
        self.assertEqual(self.fake.calls[-2:], [("authenticate", "alice"), ("groups", "alice")])
        self.fake.failure = "unreachable"
        self.assertEqual(
            self.policy.change_password("alice", "new-password-1", "other-password-1").kind,
            "directory-error",
        )

    def test_settings_errors_name_the_key(self) -> None:
        cases = [
            ({}, "profile: expected a non-empty string"),
            ({"profile": "corp", "group": {}}, "group: unknown key"),
            ({"profile": "corp", "domains": "CORP"}, "domains: expected a list of strings"),
            ({"profile": "corp", "groups": {"a": [{"name": "A"}]}}, "groups.a[0].hostname"),
            (
                {"profile": "corp", "groups": {"a": [PORT_ZERO]}},
                "groups.a[0].agent_port: expected 1-65535",
            ),
            (
                {"profile": "corp", "groups": {"a": [{"name": "A", "hostname": "h", "port": 1}]}},
                "groups.a[0]: expected {name, hostname, agent_port?}",
            ),
        ]
        for settings, message in cases:
            with self.subTest(settings=settings):
                with self.assertRaises(SettingsError) as raised:
                    self.policy.configure(json.dumps(settings))
                self.assertIn(message, str(raised.exception))


if __name__ == "__main__":
    unittest.main()
