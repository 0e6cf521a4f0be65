package mapper

import "time"

// HTTPHeader is one request or response header.
type HTTPHeader struct {
	Name  string
	Value string
}

// HTTPRequest is one outgoing request for HTTPDo. The broker sends it only to hosts listed in
// the operator's mapper.allowed_hosts.
type HTTPRequest struct {
	// Method is GET, POST, PUT, DELETE, HEAD, PATCH or OPTIONS (empty means GET).
	Method string
	// URL is an absolute http:// or https:// URL.
	URL     string
	Headers []HTTPHeader
	// Body is sent as is; nil or empty sends none.
	Body []byte
	// Timeout bounds connecting, the first byte and each later byte (0: 2 s). The call's own
	// deadline (5 s by default) still applies on top.
	Timeout time.Duration
	// MaxBody is the largest answer body read (0: 1 MiB); a larger one is an error.
	MaxBody int
}

// HTTPResponse is the answer HTTPDo read.
type HTTPResponse struct {
	Status  int
	Headers []HTTPHeader
	Body    []byte
}

// The defaults of HTTPRequest.
const (
	DefaultHTTPTimeout = 2 * time.Second
	DefaultHTTPMaxBody = 1 << 20
)
