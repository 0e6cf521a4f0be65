//! What a component exports and imports, checked before anything is instantiated.

use wasmtime::Engine;
use wasmtime::component::Component;

/// The contracts this host speaks: any `0.1.x` or `0.2.x` of `interstate:mapper/policy`.
pub const SUPPORTED_POLICY: &str =
    "interstate:mapper/policy@0.1.x or interstate:mapper/policy@0.2.x";

/// The export name of the policy interface, before its version.
const POLICY_EXPORT: &str = "interstate:mapper/policy@";

/// A version of the mapper contract the host speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ContractVersion {
    /// `0.1.x` (`wit/0.1/mapper.wit`, frozen).
    V01,
    /// `0.2.x` (`wit/mapper.wit`).
    V02,
}

impl ContractVersion {
    /// The version of a full version string such as `0.2.3`, if the host speaks it.
    fn of(version: &str) -> Option<Self> {
        let mut parts = version.splitn(3, '.');
        let (major, minor) = (parts.next()?, parts.next()?);
        parts.next()?;
        match (major, minor) {
            ("0", "1") => Some(Self::V01),
            ("0", "2") => Some(Self::V02),
            _ => None,
        }
    }
}

/// WASI packages the linker provides (filesystem and sockets are linked but deny everything:
/// no preopens, no addresses, no name lookup).
const WASI_PACKAGES: [&str; 7] = [
    "wasi:cli/",
    "wasi:clocks/",
    "wasi:filesystem/",
    "wasi:io/",
    "wasi:random/",
    "wasi:sockets/",
    "wasi:http/",
];

/// The names a component imports and exports.
#[derive(Debug, Clone, Default)]
pub(crate) struct Surface {
    /// Import names, such as `wasi:io/streams@0.2.6`.
    pub imports: Vec<String>,
    /// Export names, such as `interstate:mapper/policy@0.1.0`.
    pub exports: Vec<String>,
}

impl Surface {
    /// Reads the names from a compiled component.
    pub(crate) fn of(engine: &Engine, component: &Component) -> Self {
        let ty = component.component_type();
        Self {
            imports: ty
                .imports(engine)
                .map(|(name, _)| name.to_owned())
                .collect(),
            exports: ty
                .exports(engine)
                .map(|(name, _)| name.to_owned())
                .collect(),
        }
    }

    /// The version of the policy export (`0.1.3`) and the contract it belongs to, if the
    /// component exports a supported one.
    pub(crate) fn policy_version(&self) -> Option<(ContractVersion, &str)> {
        self.exports.iter().find_map(|name| {
            let version = name.strip_prefix(POLICY_EXPORT)?;
            Some((ContractVersion::of(version)?, version))
        })
    }

    /// Imports outside the allow-list: `interstate:mapper/*` and the WASI packages we link.
    pub(crate) fn forbidden_imports(&self) -> Vec<String> {
        self.imports
            .iter()
            .filter(|name| {
                !(name.starts_with("interstate:mapper/")
                    || WASI_PACKAGES.iter().any(|prefix| name.starts_with(prefix)))
            })
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn surface(imports: &[&str], exports: &[&str]) -> Surface {
        Surface {
            imports: imports.iter().map(|s| (*s).to_owned()).collect(),
            exports: exports.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    #[test]
    fn finds_any_0_1_or_0_2_patch() {
        let s = surface(&[], &["init", "interstate:mapper/policy@0.1.7"]);
        assert_eq!(s.policy_version(), Some((ContractVersion::V01, "0.1.7")));
        let s = surface(&[], &["interstate:mapper/policy@0.2.0"]);
        assert_eq!(s.policy_version(), Some((ContractVersion::V02, "0.2.0")));
        for refused in [
            "interstate:mapper/policy@0.3.0",
            "interstate:mapper/policy@1.1.0",
            "interstate:mapper/policy@0.2",
            "interstate:mapper/policy@0.10.0",
            "interstate:mapper/policy",
            "other:mapper/policy@0.1.0",
        ] {
            assert_eq!(surface(&[], &[refused]).policy_version(), None, "{refused}");
        }
    }

    #[test]
    fn allow_list_names_the_refused_imports() {
        let s = surface(
            &[
                "interstate:mapper/host@0.1.0",
                "wasi:io/streams@0.2.6",
                "wasi:http/outgoing-handler@0.2.12",
                "wasi:keyvalue/store@0.2.0",
                "evil:thing/api",
            ],
            &[],
        );
        assert_eq!(
            s.forbidden_imports(),
            vec!["wasi:keyvalue/store@0.2.0", "evil:thing/api"]
        );
    }
}
