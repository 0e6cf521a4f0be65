import json
import unittest
from collections.abc import Callable
from typing import Any

from example_mapper.settings import SettingsError, desktop_id, is_base32, parse_settings

from .host import EXAMPLE_SETTINGS

HASH = "8ff41da5ef01bf7ddb6aef29749422ebad97fb879df33126aed850aeb22325e8"


def settings_with(patch: Callable[[dict[str, Any]], Any]) -> str:
    base: dict[str, Any] = {
        "users": [{"username": "bob", "password_hash": HASH, "groups": ["artists"]}],
        "groups": {
            "artists": [{"name": "Artist Workstation 1", "hostname": "ws-art-1.example.com"}]
        },
    }
    replaced = patch(base)
    return json.dumps(base if replaced is None else replaced)


class SettingsTest(unittest.TestCase):
    def assert_rejects(self, text: str, message: str) -> None:
        with self.assertRaises(SettingsError) as caught:
            parse_settings(text)
        self.assertEqual(str(caught.exception), message)

    def test_the_example_settings_parse(self) -> None:
        settings = parse_settings(EXAMPLE_SETTINGS)
        self.assertEqual(list(settings.users), ["alice", "bob", "carol", "dave"])
        self.assertEqual(settings.domains, ["EXAMPLE"])
        self.assertEqual(settings.logon_domain, "EXAMPLE")
        desktops = settings.desktops_of(settings.users["bob"])
        self.assertEqual(
            [(d.id, d.name, d.hostname, d.agent_port) for d in desktops],
            [
                ("ws-art-1-example-com", "Artist Workstation 1", "ws-art-1.example.com", None),
                ("render-7-example-com", "Render Node 7", "render-7.example.com", 60443),
            ],
        )
        self.assertTrue(settings.users["alice"].mfa)
        self.assertEqual(settings.users["alice"].totp_secret, "JBSWY3DPEHPK3PXP")
        self.assertTrue(settings.users["carol"].disabled)
        self.assertTrue(settings.users["dave"].password_expired)
        self.assertFalse(settings.users["bob"].password_expired)
        self.assertEqual(
            settings.disclaimer,
            "This workstation is for authorised studio work only. Sessions may be monitored.",
        )
        self.assertIsNone(settings.power_api, "the example has no power API (tests add it)")
        self.assertEqual(settings.min_password_length, 12)

    def test_the_new_keys_parse(self) -> None:
        settings = parse_settings(
            settings_with(
                lambda s: {
                    **s,
                    "disclaimer": "é" * 2048,
                    "power_api": "https://power.example.com:8443/api/v1",
                    "min_password_length": 128,
                }
            )
        )
        self.assertEqual(len(settings.disclaimer or ""), 2048)
        self.assertEqual(settings.power_api, "https://power.example.com:8443/api/v1")
        self.assertEqual(settings.min_password_length, 128)
        for url in ("http://10.0.0.1", "http://power:8080", "https://[fd00::1]:8443/p"):
            with self.subTest(url=url):
                self.assertEqual(
                    parse_settings(settings_with(lambda s: {**s, "power_api": url})).power_api, url
                )

    def test_the_new_keys_are_validated_with_their_key_path(self) -> None:
        bad_url = "power_api: expected an http:// or https:// base URL without a trailing slash"
        cases = [
            ({"disclaimer": 7}, "disclaimer: expected a non-empty string"),
            ({"disclaimer": "é" * 2049}, "disclaimer: longer than 4096 bytes"),
            ({"power_api": True}, "power_api: expected a string"),
        ] + [
            ({"power_api": url}, bad_url)
            for url in (
                "ftp://power.example.com",
                "power.example.com",
                "http://power.example.com/",
                "https://",
                "http://power.example.com/api?x=1",
                "http://power example.com",
            )
        ] + [
            ({"min_password_length": length}, "min_password_length: expected an integer between 8 and 128")
            for length in (7, 129, 12.5, "12", None, True)
        ]
        for extra, message in cases:
            with self.subTest(extra=extra):
                self.assert_rejects(settings_with(lambda s: {**s, **extra}), message)
        self.assert_rejects(
            settings_with(lambda s: s["users"][0].update(password_expired="yes")),
            "users[0].password_expired: expected true or false",
        )

    def test_base32_secrets_are_checked_as_the_host_reads_them(self) -> None:
        for secret in ("JBSWY3DPEHPK3PXP", "jbsw y3dp ehpk 3pxp", "MFRGG===", "MFRGGZA="):
            self.assertTrue(is_base32(secret), secret)
        for secret in ("", "A", "ABC", "ABCDEF", "JBSWY3DPEHPK3PX1", "not base32!"):
            self.assertFalse(is_base32(secret), secret)

    def test_optional_keys_have_defaults(self) -> None:
        settings = parse_settings('{"users": []}')
        self.assertEqual(
            (settings.users, settings.groups, settings.domains, settings.logon_domain),
            ({}, {}, [], ""),
        )
        self.assertEqual(
            (settings.disclaimer, settings.power_api, settings.min_password_length),
            (None, None, 12),
        )

    def test_errors_name_the_key_path(self) -> None:
        def patch_user(**changes: Any) -> Callable[[dict[str, Any]], None]:
            return lambda s: s["users"][0].update(changes)

        def patch_desktop(**changes: Any) -> Callable[[dict[str, Any]], None]:
            return lambda s: s["groups"]["artists"][0].update(changes)

        cases = [
            ("[]", "settings: expected an object"),
            ("{}", "users: missing (expected a list of users)"),
            (
                settings_with(lambda s: {**s, "colour": "blue"}),
                "colour: unknown key (expected one of: users, groups, domains, logon_domain, "
                "disclaimer, power_api, min_password_length)",
            ),
            (
                settings_with(patch_user(groups="artists")),
                "users[0].groups: expected a list of strings",
            ),
            (
                settings_with(
                    lambda s: s["users"].append(
                        {"username": "eve", "password_hash": HASH, "groups": [1]}
                    )
                ),
                "users[1].groups: expected a list of strings",
            ),
            (
                settings_with(patch_user(groups=["artists", "nobody"])),
                'users[0].groups[1]: unknown group "nobody"',
            ),
            (
                settings_with(patch_user(shell="/bin/sh")),
                "users[0].shell: unknown key (expected one of: username, password_hash, groups, "
                "mfa, totp_secret, disabled, password_expired)",
            ),
            (
                settings_with(lambda s: s["users"][0].__delitem__("password_hash")),
                "users[0].password_hash: missing (expected a non-empty string)",
            ),
            (settings_with(patch_user(mfa="yes")), "users[0].mfa: expected true or false"),
            (
                settings_with(patch_user(mfa=True)),
                "users[0].totp_secret: missing (required when mfa is true)",
            ),
            (
                settings_with(patch_user(totp_secret="not base32!")),
                "users[0].totp_secret: expected a base32 secret",
            ),
            (
                settings_with(lambda s: s["users"].append(dict(s["users"][0]))),
                'users[1].username: duplicate user "bob"',
            ),
            (
                settings_with(lambda s: s["groups"].update(artists={})),
                "groups.artists: expected a list of desktops",
            ),
            (
                settings_with(patch_desktop(agent_port=70000)),
                "groups.artists[0].agent_port: expected a port number between 1 and 65535",
            ),
            (
                settings_with(patch_desktop(agent_port="60443")),
                "groups.artists[0].agent_port: expected a port number between 1 and 65535",
            ),
            (
                settings_with(patch_desktop(agent_port=True)),
                "groups.artists[0].agent_port: expected a port number between 1 and 65535",
            ),
            (
                settings_with(patch_desktop(hostname="two words")),
                "groups.artists[0].hostname: expected a host name or an IP address",
            ),
            (
                settings_with(patch_desktop(os="linux")),
                "groups.artists[0].os: unknown key (expected one of: name, hostname, agent_port)",
            ),
            (
                settings_with(lambda s: {**s, "domains": "EXAMPLE"}),
                "domains: expected a list of strings",
            ),
            (settings_with(lambda s: {**s, "logon_domain": 7}), "logon_domain: expected a string"),
        ]
        for text, message in cases:
            with self.subTest(message=message):
                self.assert_rejects(text, message)

    def test_invalid_json_is_reported(self) -> None:
        with self.assertRaises(SettingsError) as caught:
            parse_settings("{")
        self.assertTrue(str(caught.exception).startswith("settings: not valid JSON"))

    def test_two_different_desktops_cannot_share_an_id(self) -> None:
        self.assert_rejects(
            settings_with(
                lambda s: s["groups"].update(
                    render=[{"name": "Other", "hostname": "WS-ART-1.example.com"}]
                )
            ),
            'groups.render[0].hostname: desktop id "ws-art-1-example-com" is already used by '
            "groups.artists[0] with a different name or agent_port",
        )

        def same_desktop_twice(s: dict[str, Any]) -> None:
            s["groups"]["render"] = [
                {"name": "Artist Workstation 1", "hostname": "ws-art-1.example.com"}
            ]
            s["users"][0]["groups"] = ["artists", "render"]

        settings = parse_settings(settings_with(same_desktop_twice))
        self.assertEqual(len(settings.desktops_of(settings.users["bob"])), 1)

    def test_desktop_ids_are_slugs_of_the_host_name(self) -> None:
        self.assertEqual(desktop_id("ws-art-1.example.com"), "ws-art-1-example-com")
        self.assertEqual(desktop_id("Render-7.Example.COM"), "render-7-example-com")
        self.assertEqual(desktop_id("fd00::17"), "fd00--17")


if __name__ == "__main__":
    unittest.main()
