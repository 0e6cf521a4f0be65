//go:build wasip1

package main

// The component's exports (generated glue plus the SDK's GC workaround). Native builds leave
// it out, so that `go test` runs on your machine.
import _ "interstate/sdk/bindings/exports"
