module interstate

go 1.27.1

require go.bytecodealliance.org/pkg v0.4.0

// The Go support package for wit-bindgen bindings, vendored so that builds never need the
// network (see sdk/README.md).
replace go.bytecodealliance.org/pkg => ./sdk/go-pkg
