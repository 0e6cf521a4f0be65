import json
import unittest

from example_mapper.policy import (
    CODE_PROMPT,
    WRONG_CODE_TEXT,
    Accepted,
    Challenge,
    ExamplePolicy,
    Launch,
    MapperFailure,
    Refused,
    Rejected,
)
from example_mapper.totp import base32_decode, totp

from .host import EXAMPLE_SETTINGS, RecordingHost

ALICE_KEY = base32_decode("JBSWY3DPEHPK3PXP") or b""


class PolicyTest(unittest.TestCase):
    def setUp(self) -> None:
        self.recorder = RecordingHost()
        self.policy = ExamplePolicy(self.recorder.host())
        self.policy.configure(EXAMPLE_SETTINGS)

    def test_domains_come_from_the_settings(self) -> None:
        self.assertEqual(self.policy.domains(), ["EXAMPLE"])

    def test_bob_is_accepted_with_his_groups(self) -> None:
        self.assertEqual(
            self.policy.authenticate("bob", "bob-pw"),
            Accepted("bob", "EXAMPLE", [("groups", "artists,render")]),
        )
        self.assertEqual(self.recorder.lines, ['info user "bob": accepted'])

    def test_refusals(self) -> None:
        cases = [
            ("bob", "alice-pw", "bad-credentials"),
            ("mallory", "bob-pw", "bad-credentials"),
            # A wrong password does not reveal that the account is disabled.
            ("carol", "wrong", "bad-credentials"),
            ("carol", "carol-pw", "access-denied"),
        ]
        for username, password, kind in cases:
            with self.subTest(username=username, password=password):
                outcome = self.policy.authenticate(username, password)
                assert isinstance(outcome, Rejected)
                self.assertEqual(outcome.kind, kind)
        for line in self.recorder.lines:
            self.assertNotIn("-pw", line)

    def test_a_user_without_desktops_gets_no_resources(self) -> None:
        settings = json.loads(EXAMPLE_SETTINGS)
        settings["users"][1]["groups"] = []
        self.policy.configure(json.dumps(settings))
        outcome = self.policy.authenticate("bob", "bob-pw")
        assert isinstance(outcome, Rejected)
        self.assertEqual(outcome.kind, "no-resources")

    def test_alice_is_challenged_then_accepted_with_the_right_code(self) -> None:
        outcome = self.policy.authenticate("alice", "alice-pw")
        assert isinstance(outcome, Challenge)
        self.assertEqual(outcome.prompt, CODE_PROMPT)
        self.assertEqual(outcome.error_text, "")
        self.assertEqual(json.loads(outcome.state), {"user": "alice", "attempts": 0})
        code = totp(ALICE_KEY, self.recorder.now)
        done = self.policy.continue_authentication(outcome.state, [("code", code)])
        self.assertEqual(done, Accepted("alice", "EXAMPLE", [("groups", "artists")]))
        self.assertFalse(any(code in line for line in self.recorder.lines))

    def test_neighbouring_steps_pass_and_older_codes_do_not(self) -> None:
        state = json.dumps({"user": "alice", "attempts": 0})
        now = self.recorder.now
        for offset, accepted in [(-30, True), (30, True), (-90, False)]:
            with self.subTest(offset=offset):
                outcome = self.policy.continue_authentication(
                    state, [("code", totp(ALICE_KEY, now + offset))]
                )
                self.assertEqual(isinstance(outcome, Accepted), accepted)

    def test_three_wrong_codes_end_in_access_denied(self) -> None:
        outcome = self.policy.authenticate("alice", "alice-pw")
        wrong = totp(ALICE_KEY, self.recorder.now - 3600)
        for attempts in (1, 2):
            assert isinstance(outcome, Challenge)
            outcome = self.policy.continue_authentication(outcome.state, [("code", wrong)])
            assert isinstance(outcome, Challenge)
            self.assertEqual(outcome.error_text, WRONG_CODE_TEXT)
            self.assertEqual(json.loads(outcome.state), {"user": "alice", "attempts": attempts})
        assert isinstance(outcome, Challenge)
        last = self.policy.continue_authentication(outcome.state, [("code", wrong)])
        self.assertEqual(last, Rejected("bad-credentials", "3 wrong codes"))

    def test_a_missing_code_counts_as_wrong(self) -> None:
        outcome = self.policy.continue_authentication('{"user": "alice", "attempts": 0}', [])
        assert isinstance(outcome, Challenge)
        self.assertEqual(outcome.error_text, WRONG_CODE_TEXT)

    def test_a_malformed_state_is_a_mapper_failure(self) -> None:
        for state in ["not json", '{"user": "alice"}', '{"user": "alice", "attempts": true}', "[]"]:
            with self.subTest(state=state), self.assertRaises(MapperFailure):
                self.policy.continue_authentication(state, [])

    def test_desktops_come_from_the_settings_not_the_identity(self) -> None:
        self.assertEqual(
            [d.id for d in self.policy.list_desktops("bob")],
            ["ws-art-1-example-com", "render-7-example-com"],
        )
        self.assertEqual(
            [d.id for d in self.policy.list_desktops("alice")], ["ws-art-1-example-com"]
        )
        self.assertEqual(self.policy.list_desktops("carol"), [])
        self.assertEqual(self.policy.list_desktops("nobody"), [])

    def test_allocate_launches_the_users_desktop_and_refuses_others(self) -> None:
        self.assertEqual(
            self.policy.allocate("bob", "render-7-example-com"),
            Launch("render-7.example.com", 60443),
        )
        self.assertEqual(
            self.policy.allocate("bob", "ws-art-1-example-com"),
            Launch("ws-art-1.example.com", None),
        )
        self.assertIsInstance(self.policy.allocate("alice", "render-7-example-com"), Refused)
        self.assertIsInstance(self.policy.allocate("bob", "0"), Refused)

    def test_calls_before_configure_are_mapper_failures(self) -> None:
        with self.assertRaises(MapperFailure):
            ExamplePolicy(RecordingHost().host()).domains()


if __name__ == "__main__":
    unittest.main()
