//go:build wasip1

package mapper

import (
	"fmt"
	"net/url"
	"strings"

	witTypes "go.bytecodealliance.org/pkg/wit/types"

	outgoing "interstate/sdk/bindings/wasi_http_outgoing_handler"
	http "interstate/sdk/bindings/wasi_http_types"
	streams "interstate/sdk/bindings/wasi_io_streams"
)

// HTTPDo sends request through wasi:http and reads the whole answer. The broker allows it
// only to the hosts in mapper.allowed_hosts; every error names the host. A status other than
// 2xx is not an error: check Status.
func HTTPDo(request HTTPRequest) (HTTPResponse, error) {
	target, err := url.Parse(request.URL)
	if err != nil || (target.Scheme != "http" && target.Scheme != "https") || target.Host == "" || target.User != nil {
		return HTTPResponse{}, fmt.Errorf("HTTP: %q is not an http:// or https:// URL", request.URL)
	}
	host := target.Hostname()
	method, err := httpMethod(request.Method)
	if err != nil {
		return HTTPResponse{}, err
	}
	timeout := request.Timeout
	if timeout <= 0 {
		timeout = DefaultHTTPTimeout
	}
	maxBody := request.MaxBody
	if maxBody <= 0 {
		maxBody = DefaultHTTPMaxBody
	}

	entries := make([]witTypes.Tuple2[string, []uint8], 0, len(request.Headers))
	for _, header := range request.Headers {
		entries = append(entries, witTypes.Tuple2[string, []uint8]{F0: header.Name, F1: []byte(header.Value)})
	}
	fields := http.FieldsFromList(entries)
	if fields.IsErr() {
		// Header values never appear in errors: they may carry credentials.
		return HTTPResponse{}, fmt.Errorf("request to %s: a header was refused", host)
	}
	outgoingRequest := http.MakeOutgoingRequest(fields.Ok())
	scheme := http.MakeSchemeHttps()
	if target.Scheme == "http" {
		scheme = http.MakeSchemeHttp()
	}
	if outgoingRequest.SetMethod(method).IsErr() ||
		outgoingRequest.SetScheme(witTypes.Some(scheme)).IsErr() ||
		outgoingRequest.SetAuthority(witTypes.Some(target.Host)).IsErr() ||
		outgoingRequest.SetPathWithQuery(witTypes.Some(target.RequestURI())).IsErr() {
		outgoingRequest.Drop()
		return HTTPResponse{}, fmt.Errorf("request to %s: the URL was refused", host)
	}
	// A request whose body is never taken goes out with an empty body (Content-Length: 0).
	var body *http.OutgoingBody
	if len(request.Body) > 0 {
		taken := outgoingRequest.Body()
		if taken.IsErr() {
			outgoingRequest.Drop()
			return HTTPResponse{}, fmt.Errorf("request to %s: the body was unavailable", host)
		}
		body = taken.Ok()
	}

	options := http.MakeRequestOptions()
	nanos := witTypes.Some(uint64(timeout.Nanoseconds()))
	// A host that cannot honour a timeout still has the call's deadline; ignoring is safe.
	options.SetConnectTimeout(nanos)
	options.SetFirstByteTimeout(nanos)
	options.SetBetweenBytesTimeout(nanos)

	handled := outgoing.Handle(outgoingRequest, witTypes.Some(options))
	if handled.IsErr() {
		if body != nil {
			body.Drop()
		}
		return HTTPResponse{}, describeHTTPError(host, handled.Err())
	}
	future := handled.Ok()
	defer future.Drop()
	if body != nil {
		if err := writeBody(body, request.Body, host); err != nil {
			return HTTPResponse{}, err
		}
	}

	pollable := future.Subscribe()
	pollable.Block()
	pollable.Drop()
	got := future.Get()
	if got.IsNone() || got.Some().IsErr() {
		return HTTPResponse{}, fmt.Errorf("request to %s: the response was lost by the host", host)
	}
	if got.Some().Ok().IsErr() {
		return HTTPResponse{}, describeHTTPError(host, got.Some().Ok().Err())
	}
	response := got.Some().Ok().Ok()
	defer response.Drop()

	result := HTTPResponse{Status: int(response.Status())}
	headers := response.Headers()
	for _, entry := range headers.Entries() {
		result.Headers = append(result.Headers, HTTPHeader{Name: entry.F0, Value: string(entry.F1)})
	}
	headers.Drop()
	result.Body, err = readBody(response, host, maxBody)
	if err != nil {
		return HTTPResponse{}, err
	}
	return result, nil
}

func httpMethod(name string) (http.Method, error) {
	switch strings.ToUpper(name) {
	case "", "GET":
		return http.MakeMethodGet(), nil
	case "POST":
		return http.MakeMethodPost(), nil
	case "PUT":
		return http.MakeMethodPut(), nil
	case "DELETE":
		return http.MakeMethodDelete(), nil
	case "HEAD":
		return http.MakeMethodHead(), nil
	case "PATCH":
		return http.MakeMethodPatch(), nil
	case "OPTIONS":
		return http.MakeMethodOptions(), nil
	}
	return http.Method{}, fmt.Errorf("HTTP: unsupported method %q", name)
}

// writeBody writes the whole body and finishes it.
func writeBody(body *http.OutgoingBody, contents []byte, host string) error {
	opened := body.Write()
	if opened.IsErr() {
		body.Drop()
		return fmt.Errorf("request to %s: the body was unavailable", host)
	}
	stream := opened.Ok()
	for len(contents) > 0 {
		// blocking-write-and-flush takes at most 4096 bytes at a time.
		chunk := contents[:min(len(contents), 4096)]
		if stream.BlockingWriteAndFlush(chunk).IsErr() {
			stream.Drop()
			body.Drop()
			return fmt.Errorf("request to %s: sending the body failed", host)
		}
		contents = contents[len(chunk):]
	}
	stream.Drop()
	if http.OutgoingBodyFinish(body, witTypes.None[*http.Fields]()).IsErr() {
		return fmt.Errorf("request to %s: finishing the body failed", host)
	}
	return nil
}

// readBody reads the whole answer body, at most maxBody bytes.
func readBody(response *http.IncomingResponse, host string, maxBody int) ([]byte, error) {
	consumed := response.Consume()
	if consumed.IsErr() {
		return nil, fmt.Errorf("response from %s: the body was unavailable", host)
	}
	body := consumed.Ok()
	opened := body.Stream()
	if opened.IsErr() {
		body.Drop()
		return nil, fmt.Errorf("response from %s: the body was unavailable", host)
	}
	stream := opened.Ok()
	var contents []byte
	var err error
	for {
		chunk := stream.BlockingRead(64 * 1024)
		if chunk.IsErr() {
			if chunk.Err().Tag() != streams.StreamError_Closed {
				failure := chunk.Err().LastOperationFailed()
				err = fmt.Errorf("response from %s: reading the body failed: %s", host, failure.ToDebugString())
				failure.Drop()
			}
			break
		}
		contents = append(contents, chunk.Ok()...)
		if len(contents) > maxBody {
			err = fmt.Errorf("response from %s: the body is larger than %d bytes", host, maxBody)
			break
		}
	}
	stream.Drop()
	http.IncomingBodyFinish(body).Drop()
	return contents, err
}

func describeHTTPError(host string, code http.ErrorCode) error {
	switch code.Tag() {
	case http.ErrorCode_HttpRequestDenied:
		return fmt.Errorf("request to %s refused by the broker: add it to mapper.allowed_hosts", host)
	case http.ErrorCode_DestinationIpProhibited:
		return fmt.Errorf("request to %s refused by the broker: a private, loopback or link-local address", host)
	case http.ErrorCode_DnsError, http.ErrorCode_DnsTimeout, http.ErrorCode_DestinationNotFound:
		return fmt.Errorf("request to %s: the name does not resolve", host)
	case http.ErrorCode_ConnectionRefused:
		return fmt.Errorf("request to %s: connection refused", host)
	case http.ErrorCode_ConnectionTimeout, http.ErrorCode_ConnectionReadTimeout,
		http.ErrorCode_ConnectionWriteTimeout, http.ErrorCode_HttpResponseTimeout:
		return fmt.Errorf("request to %s: timed out", host)
	case http.ErrorCode_TlsProtocolError, http.ErrorCode_TlsCertificateError, http.ErrorCode_TlsAlertReceived:
		return fmt.Errorf("request to %s: TLS failed", host)
	case http.ErrorCode_InternalError:
		if detail := code.InternalError(); detail.IsSome() {
			return fmt.Errorf("request to %s failed: %s", host, detail.Some())
		}
	}
	return fmt.Errorf("request to %s failed (wasi:http error code %d)", host, code.Tag())
}
