//! Why a mapper could not be loaded.

use std::path::PathBuf;

use interstate_protocol::policy::MapperError;

/// A mapper component was refused at load time. Every message is meant for the operator.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The wasmtime engine could not be created.
    #[error("could not start the wasm engine: {0}")]
    Engine(String),
    /// The component file could not be read.
    #[error("cannot read mapper component {path}: {source}")]
    FileUnreadable {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The bytes are not a WebAssembly component.
    #[error("{name} is not a WebAssembly component: {reason}")]
    NotAComponent {
        /// The mapper's name.
        name: String,
        /// What it is instead.
        reason: String,
    },
    /// The component speaks no version of the mapper contract that this host knows.
    #[error(
        "{name} is not a compatible mapper: it must export {expected}, but it exports [{}]",
        exports.join(", ")
    )]
    Incompatible {
        /// The mapper's name.
        name: String,
        /// What it exports.
        exports: Vec<String>,
        /// What is needed.
        expected: String,
    },
    /// The component exports the interface, but with functions of other shapes.
    #[error("{name} exports {export} with an incompatible shape: {reason}")]
    BadExport {
        /// The mapper's name.
        name: String,
        /// The export checked.
        export: String,
        /// The type checker's message.
        reason: String,
    },
    /// The component imports interfaces that mappers may not use.
    #[error(
        "{name} imports interfaces a mapper may not use: {} (allowed: interstate:mapper/*, wasi:cli, wasi:clocks, wasi:filesystem, wasi:io, wasi:random, wasi:sockets, wasi:http)",
        forbidden.join(", ")
    )]
    ForbiddenImports {
        /// The mapper's name.
        name: String,
        /// The refused imports.
        forbidden: Vec<String>,
    },
    /// The imports are allowed by name but could not be linked (an unknown version).
    #[error("{name} cannot be linked: {reason}")]
    Link {
        /// The mapper's name.
        name: String,
        /// The linker's message.
        reason: String,
    },
    /// Compiling the component failed.
    #[error("compiling {name} failed: {reason}")]
    Compile {
        /// The mapper's name.
        name: String,
        /// Cranelift's or the validator's message.
        reason: String,
    },
    /// The mapper refused its settings; `message` is the mapper's own.
    #[error("the mapper refused its settings: {message}")]
    Configure {
        /// The mapper's message.
        message: String,
    },
    /// Calling the mapper at load time failed (trap, timeout, out of memory).
    #[error("the mapper's {stage} call failed: {source}")]
    Call {
        /// `configure` or `domains`.
        stage: &'static str,
        /// What happened.
        source: MapperError,
    },
    /// `domains()` answered outside the contract's bounds.
    #[error("the mapper's domains are refused: {0}")]
    Domains(String),
}
