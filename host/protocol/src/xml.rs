//! The XML layer shared by the broker and agent codecs: a bounded, DTD-free tree reader and a
//! small indenting writer.
//!
//! Messages are tiny (a few dozen elements), so a request is first read into an [`tree::Element`]
//! tree under hard limits, then mapped onto typed messages. Mapping a tree is simpler to get
//! right than a streaming state machine, and the limits keep the tree small.

pub(crate) mod tree;
pub(crate) mod writer;
