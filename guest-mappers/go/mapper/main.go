// Command mapper is an Interstate mapper written in Go: policy.go holds the policy, and this
// file registers it. Build the component with ../build.sh; test with `go test ./...`.
package main

import "interstate/sdk/mapper"

func init() {
	mapper.Register(NewExamplePolicy())
}

// main is never called: the broker calls the component's exports instead.
func main() {}
