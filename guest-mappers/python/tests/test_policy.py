import json
import unittest
from collections.abc import Callable
from typing import Any

from example_mapper.policy import (
    CODE_BUTTONS,
    CODE_PROMPT,
    LAST_DESKTOP_TTL_MS,
    REPLAYED_CODE_TEXT,
    WRONG_CODE_TEXT,
    Accepted,
    Challenge,
    DesktopRefused,
    DialogAnswer,
    Disclaimer,
    DisclaimerAccepted,
    ExamplePolicy,
    Launch,
    MapperFailure,
    PasswordChanged,
    PasswordRejected,
    Rejected,
)
from example_mapper.power import Done, HttpError, HttpResponse, Refused, TryAgain, Unsupported

from .host import (
    ALICE_SECRET,
    EXAMPLE_SETTINGS,
    GOOD_CODE,
    RecordingHost,
    hash_test_password,
)

DISCLAIMER = "This workstation is for authorised studio work only. Sessions may be monitored."
POWER_API = "http://power.example.com:8080/v1"
BOB_ACCEPTED = Accepted("bob", "EXAMPLE", [("groups", "artists,render")])
ALICE_ACCEPTED = Accepted("alice", "EXAMPLE", [("groups", "artists")])
NO_LONGER_ALLOWED = Rejected("access-denied", "user no longer allowed to log in")


def settings_with(patch: Callable[[dict[str, Any]], None]) -> str:
    """The example settings changed by ``patch`` (which edits the parsed object in place)."""
    settings = json.loads(EXAMPLE_SETTINGS)
    patch(settings)
    return json.dumps(settings)


def without_disclaimer(settings: dict[str, Any]) -> None:
    del settings["disclaimer"]


def with_power_api(settings: dict[str, Any]) -> None:
    settings["power_api"] = POWER_API


def code_answer(code: str | None, button: str = "ok") -> DialogAnswer:
    return DialogAnswer(fields=[] if code is None else [("code", code)], button_id=button)


def code_state(user: str, attempts: int) -> str:
    return json.dumps({"user": user, "stage": "code", "attempts": attempts})


DISCLAIMER_STATE = json.dumps({"user": "alice", "stage": "disclaimer"})


class PolicyCase(unittest.TestCase):
    settings = EXAMPLE_SETTINGS

    def setUp(self) -> None:
        self.recorder = RecordingHost()
        self.policy = ExamplePolicy(self.recorder.host())
        self.policy.configure(self.settings)

    def reconfigure(self, settings: str) -> None:
        self.policy.configure(settings)

    def assert_not_logged(self, *secrets: str) -> None:
        for line in self.recorder.lines:
            for secret in secrets:
                self.assertNotIn(secret, line)


class AuthenticationTest(PolicyCase):
    def test_domains_come_from_the_settings(self) -> None:
        self.assertEqual(self.policy.domains(), ["EXAMPLE"])

    def test_calls_before_configure_are_mapper_failures(self) -> None:
        with self.assertRaises(MapperFailure):
            ExamplePolicy(RecordingHost().host()).domains()

    def test_the_disclaimer_comes_first_and_accepting_it_lets_bob_in(self) -> None:
        outcome = self.policy.authenticate("bob", "bob-pw")
        assert isinstance(outcome, Disclaimer)
        self.assertEqual(outcome.text, DISCLAIMER)
        self.assertEqual(json.loads(outcome.state), {"user": "bob", "stage": "disclaimer"})
        self.assertEqual(
            self.policy.continue_authentication(outcome.state, DisclaimerAccepted()), BOB_ACCEPTED
        )
        self.assertEqual(
            self.recorder.lines, ['info user "bob": disclaimer', 'info user "bob": accepted']
        )

    def test_without_a_disclaimer_bob_is_accepted_at_once(self) -> None:
        self.reconfigure(settings_with(without_disclaimer))
        self.assertEqual(self.policy.authenticate("bob", "bob-pw"), BOB_ACCEPTED)
        self.assertEqual(self.recorder.lines, ['info user "bob": accepted'])

    def test_refusals(self) -> None:
        cases = [
            ("bob", "alice-pw", Rejected("bad-credentials", "wrong password")),
            ("mallory", "bob-pw", Rejected("bad-credentials", "unknown user")),
            # A wrong password reveals neither a disabled account nor an expired password.
            ("carol", "carol-typo", Rejected("bad-credentials", "wrong password")),
            ("dave", "dave-typo", Rejected("bad-credentials", "wrong password")),
            ("carol", "carol-pw", Rejected("access-denied", "account disabled")),
        ]
        for username, password, expected in cases:
            with self.subTest(username=username, password=password):
                self.assertEqual(self.policy.authenticate(username, password), expected)
        self.assertEqual(self.recorder.verify_calls, 5, "an unknown user costs a hash check too")
        self.assert_not_logged("-pw", "-typo")

    def test_a_user_without_desktops_gets_no_resources(self) -> None:
        self.reconfigure(settings_with(lambda s: s["users"][1].update(groups=[])))
        self.assertEqual(
            self.policy.authenticate("bob", "bob-pw"),
            Rejected("no-resources", "no desktops in the user's groups"),
        )

    def test_an_expired_password_is_rejected_until_changed(self) -> None:
        self.assertEqual(
            self.policy.authenticate("dave", "dave-pw"),
            Rejected("expired-password", "password expired"),
        )
        self.recorder.values["password-hash:dave"] = hash_test_password("dave-new-password").encode()
        self.assertEqual(self.policy.authenticate("dave", "dave-pw").kind, "bad-credentials")  # type: ignore[union-attr]
        self.assertIsInstance(self.policy.authenticate("dave", "dave-new-password"), Disclaimer)

    def test_a_changed_password_in_the_store_replaces_the_settings_hash(self) -> None:
        self.reconfigure(settings_with(without_disclaimer))
        self.recorder.values["password-hash:bob"] = hash_test_password("bob-new-password").encode()
        self.assertEqual(
            self.policy.authenticate("bob", "bob-pw"),
            Rejected("bad-credentials", "wrong password"),
        )
        self.assertEqual(self.policy.authenticate("bob", "bob-new-password"), BOB_ACCEPTED)

    def test_a_store_failure_reading_the_hash_is_a_mapper_failure(self) -> None:
        self.recorder.store_error = "unavailable: redis down"
        with self.assertRaisesRegex(MapperFailure, "^store: unavailable: redis down$"):
            self.policy.authenticate("bob", "bob-pw")


class CodeDialogTest(PolicyCase):
    def test_alice_sees_the_disclaimer_then_the_dialog_then_is_in(self) -> None:
        disclaimer = self.policy.authenticate("alice", "alice-pw")
        assert isinstance(disclaimer, Disclaimer)
        outcome = self.policy.continue_authentication(disclaimer.state, DisclaimerAccepted())
        assert isinstance(outcome, Challenge)
        self.assertEqual(outcome.prompt, CODE_PROMPT)
        self.assertEqual(outcome.prompt, "Enter the 6-digit code from your authenticator app")
        self.assertEqual(outcome.error_text, "")
        self.assertEqual(CODE_BUTTONS, (("ok", "Verify", True), ("cancel", "Cancel", False)))
        self.assertEqual(
            json.loads(outcome.state), {"user": "alice", "stage": "code", "attempts": 0}
        )
        done = self.policy.continue_authentication(outcome.state, code_answer(GOOD_CODE))
        self.assertEqual(done, ALICE_ACCEPTED)
        self.assertEqual(self.recorder.totp_calls, [(ALICE_SECRET, GOOD_CODE)])
        self.assertEqual(
            self.recorder.lines,
            [
                'info user "alice": disclaimer',
                'info user "alice": challenge',
                'info user "alice": accepted',
            ],
        )
        self.assert_not_logged(GOOD_CODE, "alice-pw")

    def test_without_a_disclaimer_alice_goes_straight_to_the_dialog(self) -> None:
        self.reconfigure(settings_with(without_disclaimer))
        outcome = self.policy.authenticate("alice", "alice-pw")
        assert isinstance(outcome, Challenge)
        self.assertEqual(
            json.loads(outcome.state), {"user": "alice", "stage": "code", "attempts": 0}
        )

    def test_wrong_and_replayed_codes_then_the_third_failure_is_refused(self) -> None:
        self.recorder.spent_codes.add(GOOD_CODE)
        retry = self.policy.continue_authentication(code_state("alice", 0), code_answer("000000"))
        assert isinstance(retry, Challenge)
        self.assertEqual(retry.error_text, WRONG_CODE_TEXT)
        self.assertEqual(retry.error_text, "Wrong code, try again")
        self.assertEqual(json.loads(retry.state), {"user": "alice", "stage": "code", "attempts": 1})
        replayed = self.policy.continue_authentication(retry.state, code_answer(GOOD_CODE))
        assert isinstance(replayed, Challenge)
        self.assertEqual(replayed.error_text, REPLAYED_CODE_TEXT)
        self.assertEqual(replayed.error_text, "That code was already used, wait for the next one")
        self.assertEqual(
            json.loads(replayed.state), {"user": "alice", "stage": "code", "attempts": 2}
        )
        last = self.policy.continue_authentication(replayed.state, code_answer("111111"))
        self.assertEqual(last, Rejected("bad-credentials", "3 wrong codes"))
        self.assert_not_logged("000000", "111111", GOOD_CODE)

    def test_a_replayed_code_on_the_third_attempt_is_refused_too(self) -> None:
        self.recorder.spent_codes.add(GOOD_CODE)
        self.assertEqual(
            self.policy.continue_authentication(code_state("alice", 2), code_answer(GOOD_CODE)),
            Rejected("bad-credentials", "3 wrong codes"),
        )

    def test_a_missing_code_counts_as_wrong(self) -> None:
        outcome = self.policy.continue_authentication(code_state("alice", 0), code_answer(None))
        assert isinstance(outcome, Challenge)
        self.assertEqual(outcome.error_text, WRONG_CODE_TEXT)
        self.assertEqual(self.recorder.totp_calls, [(ALICE_SECRET, "")])

    def test_cancel_is_access_denied_and_no_code_is_checked(self) -> None:
        self.assertEqual(
            self.policy.continue_authentication(
                code_state("alice", 1), code_answer(GOOD_CODE, "cancel")
            ),
            Rejected("access-denied", "code dialog cancelled"),
        )
        self.assertEqual(self.recorder.totp_calls, [])

    def test_an_answer_for_another_step_is_a_mapper_failure(self) -> None:
        with self.assertRaisesRegex(MapperFailure, "^step answer does not match the pending step$"):
            self.policy.continue_authentication(code_state("alice", 0), DisclaimerAccepted())
        with self.assertRaisesRegex(MapperFailure, "^step answer does not match the pending step$"):
            self.policy.continue_authentication(DISCLAIMER_STATE, code_answer(GOOD_CODE))

    def test_a_malformed_state_is_a_mapper_failure(self) -> None:
        for state in [
            "not json",
            "[]",
            '{"user": "alice"}',
            '{"user": "alice", "stage": "code"}',
            '{"user": "alice", "stage": "code", "attempts": true}',
            '{"user": "alice", "stage": "code", "attempts": -1}',
            '{"user": "alice", "stage": "password"}',
            '{"stage": "disclaimer"}',
        ]:
            with self.subTest(state=state), self.assertRaisesRegex(MapperFailure, "^step state is"):
                self.policy.continue_authentication(state, code_answer(GOOD_CODE))

    def test_a_user_disabled_or_without_mfa_since_the_password_is_refused(self) -> None:
        def patch(s: dict[str, Any]) -> None:
            s["users"][0]["disabled"] = True

        self.reconfigure(settings_with(patch))
        self.assertEqual(
            self.policy.continue_authentication(code_state("alice", 0), code_answer(GOOD_CODE)),
            NO_LONGER_ALLOWED,
        )
        self.assertEqual(
            self.policy.continue_authentication(DISCLAIMER_STATE, DisclaimerAccepted()),
            NO_LONGER_ALLOWED,
        )
        for user in ("bob", "nobody"):
            self.assertEqual(
                self.policy.continue_authentication(code_state(user, 0), code_answer(GOOD_CODE)),
                NO_LONGER_ALLOWED,
            )


class DesktopTest(PolicyCase):
    def test_desktops_come_from_the_settings_not_the_identity(self) -> None:
        self.assertEqual(
            [(d.id, d.agent_port) for d in self.policy.list_desktops("bob")],
            [("ws-art-1-example-com", None), ("render-7-example-com", 60443)],
        )
        self.assertEqual(
            [d.id for d in self.policy.list_desktops("alice")], ["ws-art-1-example-com"]
        )
        self.assertEqual(self.policy.list_desktops("carol"), [])
        self.assertEqual(self.policy.list_desktops("nobody"), [])

    def test_operations_only_with_a_power_api(self) -> None:
        self.assertEqual(self.policy.operations(), ())
        self.reconfigure(settings_with(with_power_api))
        self.assertEqual(self.policy.operations(), ("restart", "power-down", "power-up"))

    def test_the_desktop_launched_last_is_listed_first(self) -> None:
        self.reconfigure(
            settings_with(
                lambda s: s["groups"]["render"].append(
                    {"name": "Render Node 8", "hostname": "render-8.example.com"}
                )
            )
        )

        def ids() -> list[str]:
            return [d.id for d in self.policy.list_desktops("bob")]

        in_order = ["ws-art-1-example-com", "render-7-example-com", "render-8-example-com"]
        self.assertEqual(ids(), in_order)
        self.recorder.values["last-desktop:bob"] = b"render-8-example-com"
        self.assertEqual(
            ids(), ["render-8-example-com", "ws-art-1-example-com", "render-7-example-com"]
        )
        self.recorder.values["last-desktop:bob"] = b"not-bobs"
        self.assertEqual(ids(), in_order)

    def test_a_store_failure_reading_the_last_desktop_is_logged_and_ignored(self) -> None:
        self.recorder.store_error = "unavailable: redis down"
        self.assertEqual(len(self.policy.list_desktops("bob")), 2)
        self.assertIn(
            'warn user "bob": last desktop not read: unavailable: redis down', self.recorder.lines
        )

    def test_allocate_launches_remembers_and_refuses_others(self) -> None:
        self.assertEqual(
            self.policy.allocate("bob", "render-7-example-com"),
            Launch("render-7.example.com", 60443),
        )
        self.assertEqual(LAST_DESKTOP_TTL_MS, 2_592_000_000)
        self.assertEqual(
            self.recorder.writes, [("last-desktop:bob", "render-7-example-com", 2_592_000_000)]
        )
        self.assertEqual(
            [d.id for d in self.policy.list_desktops("bob")],
            ["render-7-example-com", "ws-art-1-example-com"],
        )
        self.assertIsInstance(self.policy.allocate("alice", "render-7-example-com"), DesktopRefused)
        self.assertIsInstance(self.policy.allocate("bob", "0"), DesktopRefused)
        self.assertEqual(len(self.recorder.writes), 1, "a refusal remembers nothing")

    def test_a_store_failure_remembering_the_desktop_is_logged_and_the_launch_goes_on(
        self,
    ) -> None:
        self.recorder.store_error = "full"
        self.assertIsInstance(self.policy.allocate("bob", "ws-art-1-example-com"), Launch)
        self.assertIn('warn user "bob": last desktop not kept: full', self.recorder.lines)


class OperateTest(PolicyCase):
    settings = settings_with(with_power_api)
    machine = f"{POWER_API}/machines/ws-art-1.example.com"

    def power_up(self) -> object:
        return self.policy.operate("bob", "ws-art-1-example-com", "power-up")

    def assert_refused(self, outcome: object, detail: str) -> None:
        assert isinstance(outcome, Refused), outcome
        self.assertTrue(outcome.detail.startswith("power API: "), outcome.detail)
        self.assertIn(detail, outcome.detail)

    def test_unsupported_without_a_power_api(self) -> None:
        self.reconfigure(EXAMPLE_SETTINGS)
        self.assertEqual(self.policy.operate("bob", "ws-art-1-example-com", "restart"), Unsupported())
        self.assertEqual(self.recorder.requests, [])

    def test_a_desktop_that_is_not_the_users_is_refused(self) -> None:
        self.assertEqual(
            self.policy.operate("alice", "render-7-example-com", "restart"),
            Refused("unknown desktop"),
        )
        self.assertEqual(self.policy.operate("bob", "elsewhere", "power-up"), Refused("unknown desktop"))
        self.assertEqual(self.recorder.requests, [])

    def test_restart_and_power_down_are_posts(self) -> None:
        self.recorder.routes[f"POST {self.machine}/restart"] = HttpResponse(202, "")
        self.recorder.routes[f"POST {self.machine}/power-down"] = HttpResponse(200, "{}")
        for op in ("restart", "power-down"):
            self.assertEqual(
                self.policy.operate("bob", "ws-art-1-example-com", op), Done("requested")
            )
        self.assertEqual(
            self.recorder.requests,
            [f"POST {self.machine}/restart", f"POST {self.machine}/power-down"],
        )

    def test_power_up_reads_the_state_first(self) -> None:
        def state(value: str) -> None:
            self.recorder.routes[f"GET {self.machine}"] = HttpResponse(
                200, json.dumps({"state": value})
            )

        state("running")
        self.assertEqual(self.power_up(), Done("running"))
        state("starting")
        self.assertEqual(self.power_up(), TryAgain("starting"))
        self.assertEqual(self.recorder.requests, [f"GET {self.machine}"] * 2)
        state("stopped")
        self.recorder.routes[f"POST {self.machine}/power-up"] = HttpResponse(204, "")
        self.recorder.requests.clear()
        self.assertEqual(self.power_up(), TryAgain("powering on"))
        self.assertEqual(
            self.recorder.requests, [f"GET {self.machine}", f"POST {self.machine}/power-up"]
        )

    def test_every_power_api_failure_is_refused_with_its_detail(self) -> None:
        routes = self.recorder.routes
        self.assert_refused(
            self.policy.operate("bob", "ws-art-1-example-com", "restart"), "answered 404"
        )
        routes[f"GET {self.machine}"] = HttpResponse(500, "oops")
        self.assert_refused(self.power_up(), f"GET {self.machine} answered 500")
        routes[f"GET {self.machine}"] = HttpResponse(200, "<html>")
        self.assert_refused(self.power_up(), "not JSON")
        routes[f"GET {self.machine}"] = HttpResponse(200, '{"state": "exploded"}')
        self.assert_refused(self.power_up(), "expected")
        routes[f"GET {self.machine}"] = HttpResponse(200, "null")
        self.assert_refused(self.power_up(), "expected")
        routes[f"GET {self.machine}"] = HttpResponse(200, '{"state": "stopped"}')
        routes[f"POST {self.machine}/power-up"] = HttpResponse(409, "")
        self.assert_refused(self.power_up(), f"POST {self.machine}/power-up answered 409")

        def unreachable() -> HttpResponse:
            raise HttpError("connection-refused")

        routes[f"GET {self.machine}"] = unreachable
        self.assert_refused(self.power_up(), "connection-refused")

    def test_the_host_name_is_percent_encoded(self) -> None:
        def patch(s: dict[str, Any]) -> None:
            s["power_api"] = "https://power.example.com"
            s["groups"]["render"][0]["hostname"] = "::ffff:10.0.0.7"

        self.reconfigure(settings_with(patch))
        url = "https://power.example.com/machines/%3A%3Affff%3A10.0.0.7/restart"
        self.recorder.routes[f"POST {url}"] = HttpResponse(200, "")
        self.assertEqual(
            self.policy.operate("bob", "--ffff-10-0-0-7", "restart"), Done("requested")
        )


class ChangePasswordTest(PolicyCase):
    def test_unknown_users_and_wrong_old_passwords(self) -> None:
        cases = [
            ("nobody", "dave-pw", "unknown user"),
            ("dave", "not-daves", "wrong password"),
        ]
        for username, old, reason in cases:
            with self.subTest(username=username):
                self.assertEqual(
                    self.policy.change_password(username, old, "a-long-new-password"),
                    PasswordRejected("wrong-password", reason),
                )
        self.recorder.values["password-hash:bob"] = hash_test_password("bob-changed-once").encode()
        self.assertEqual(
            self.policy.change_password("bob", "bob-pw", "a-long-new-password"),
            PasswordRejected("wrong-password", "wrong password"),
        )
        self.assertEqual(self.recorder.writes, [])
        self.assert_not_logged("-pw", "not-daves", "a-long-new-password")

    def test_short_and_unchanged_new_passwords_are_weak(self) -> None:
        for new in ("elevenchars", "é" * 11):
            with self.subTest(new=new):
                self.assertEqual(
                    self.policy.change_password("dave", "dave-pw", new),
                    PasswordRejected(
                        "weak-password", "the new password is shorter than 12 characters"
                    ),
                )
        self.assertEqual(self.recorder.writes, [])

        def eight(s: dict[str, Any]) -> None:
            s["min_password_length"] = 8
            s["users"][1]["password_hash"] = hash_test_password("same-password")

        self.reconfigure(settings_with(eight))
        self.assertEqual(
            self.policy.change_password("bob", "same-password", "same-password"),
            PasswordRejected("weak-password", "the new password is the old one"),
        )
        self.assertIsInstance(self.policy.change_password("dave", "dave-pw", "eightchr"), PasswordChanged)

    def test_a_changed_password_is_stored_as_the_hosts_hash(self) -> None:
        outcome = self.policy.change_password("dave", "dave-pw", "dave-new-password")
        assert isinstance(outcome, PasswordChanged)
        self.assertEqual(
            outcome.outcome,
            Disclaimer(DISCLAIMER, json.dumps({"user": "dave", "stage": "disclaimer"}, separators=(",", ":"))),
        )
        self.assertEqual(
            self.recorder.writes,
            [("password-hash:dave", hash_test_password("dave-new-password"), None)],
        )
        self.assert_not_logged("dave-pw", "dave-new-password")
        self.assertIsInstance(self.policy.authenticate("dave", "dave-new-password"), Disclaimer)
        self.assertEqual(
            self.policy.authenticate("dave", "dave-pw"),
            Rejected("bad-credentials", "wrong password"),
        )
        self.assertIsInstance(
            self.policy.change_password("dave", "dave-new-password", "dave-third-password"),
            PasswordChanged,
        )

    def test_the_outcome_is_what_follows_the_password(self) -> None:
        self.reconfigure(settings_with(without_disclaimer))
        alice = self.policy.change_password("alice", "alice-pw", "alice-new-password")
        assert isinstance(alice, PasswordChanged)
        assert isinstance(alice.outcome, Challenge), "a change never skips the second factor"
        self.assertEqual(
            json.loads(alice.outcome.state), {"user": "alice", "stage": "code", "attempts": 0}
        )
        self.assertEqual(
            self.policy.change_password("dave", "dave-pw", "dave-new-password"),
            PasswordChanged(Accepted("dave", "EXAMPLE", [("groups", "artists")])),
        )

    def test_a_disabled_user_may_change_and_is_still_refused_as_at_login(self) -> None:
        self.assertEqual(
            self.policy.change_password("carol", "carol-pw", "carol-new-password"),
            PasswordChanged(Rejected("access-denied", "account disabled")),
        )
        self.assertEqual(len(self.recorder.writes), 1)
        self.assertEqual(
            self.recorder.lines,
            ['info user "carol": password changed, then rejected (access-denied: account disabled)'],
        )

    def test_a_store_failure_is_a_directory_error(self) -> None:
        self.recorder.store_error = "unavailable: redis down"
        self.assertEqual(
            self.policy.change_password("dave", "dave-pw", "dave-new-password"),
            PasswordRejected("directory-error", "store: unavailable: redis down"),
        )


class LogTest(PolicyCase):
    settings = settings_with(with_power_api)

    def test_every_decision_logs_one_info_line_without_secrets(self) -> None:
        self.policy.authenticate("bob", "bob-pw")
        self.policy.continue_authentication(code_state("alice", 0), code_answer(GOOD_CODE))
        self.policy.list_desktops("bob")
        self.policy.allocate("bob", "ws-art-1-example-com")
        self.policy.operate("bob", "ws-art-1-example-com", "restart")
        self.policy.change_password("dave", "dave-pw", "dave-new-password")
        self.assertEqual(
            self.recorder.lines,
            [
                'info user "bob": disclaimer',
                'info user "alice": accepted',
                'info user "bob": 2 desktop(s)',
                'info user "bob": launch on ws-art-1.example.com',
                'info user "bob": restart on ws-art-1.example.com: refused (power API: POST '
                f'{POWER_API}/machines/ws-art-1.example.com/restart answered 404)',
                'info user "dave": password changed, then disclaimer',
            ],
        )
        self.assert_not_logged("bob-pw", GOOD_CODE, "dave-pw", "dave-new-password")


if __name__ == "__main__":
    unittest.main()
