package main

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"interstate/sdk/mapper"
)

var operationNames = map[mapper.Operation]string{
	mapper.OperationRestart:   "restart",
	mapper.OperationPowerDown: "power-down",
	mapper.OperationPowerUp:   "power-up",
}

// Operate restarts, powers down or powers up one of the user's desktops through the power API
// (settings power_api). The API failing is a refusal, never an error: the user is told the
// operation could not be done and the session goes on.
func (p *ExamplePolicy) Operate(user mapper.Identity, desktopID string, op mapper.Operation, _ mapper.ClientInfo) (mapper.OperationOutcome, error) {
	settings, err := p.current()
	if err != nil {
		return mapper.OperationOutcome{}, err
	}
	name := operationNames[op]
	if settings.PowerAPI == "" {
		logUser(p.host, user.Username, name+" unsupported (no power API)")
		return mapper.OperationUnsupported(), nil
	}
	entry, found, err := p.desktopOf(user.Username, desktopID)
	if err != nil {
		return mapper.OperationOutcome{}, err
	}
	if !found {
		logUser(p.host, user.Username, name+" refused: unknown desktop "+strconv.Quote(desktopID))
		return mapper.OperationRefused("unknown desktop"), nil
	}
	machine := settings.PowerAPI + "/machines/" + percentEncode(entry.Hostname)
	var outcome mapper.OperationOutcome
	switch op {
	case mapper.OperationPowerUp:
		outcome = p.powerUp(machine)
	case mapper.OperationRestart, mapper.OperationPowerDown:
		outcome = p.post(machine+"/"+name, mapper.OperationDone("requested"))
	default:
		outcome = mapper.OperationUnsupported()
	}
	logUser(p.host, user.Username, fmt.Sprintf("%s on %s: %s", name, entry.Hostname, describeOperation(outcome)))
	return outcome, nil
}

// powerUp asks the machine's state, and powers it on when it is stopped.
func (p *ExamplePolicy) powerUp(machine string) mapper.OperationOutcome {
	response, err := p.host.HTTPDo(mapper.HTTPRequest{Method: "GET", URL: machine})
	if err != nil {
		return powerAPIFailed(err.Error())
	}
	if !success(response.Status) {
		return powerAPIFailed(fmt.Sprintf("GET %s answered %d", machine, response.Status))
	}
	var answer struct {
		State *string `json:"state"`
	}
	if err := json.Unmarshal(response.Body, &answer); err != nil || answer.State == nil {
		return powerAPIFailed(fmt.Sprintf("GET %s: malformed body", machine))
	}
	switch *answer.State {
	case "running":
		return mapper.OperationDone("running")
	case "starting":
		return mapper.OperationTryAgain("starting")
	case "stopped":
		return p.post(machine+"/power-up", mapper.OperationTryAgain("powering on"))
	}
	return powerAPIFailed(fmt.Sprintf("GET %s: unknown state %s", machine, strconv.Quote(*answer.State)))
}

// post sends an empty POST and answers onSuccess for a 2xx.
func (p *ExamplePolicy) post(url string, onSuccess mapper.OperationOutcome) mapper.OperationOutcome {
	response, err := p.host.HTTPDo(mapper.HTTPRequest{Method: "POST", URL: url})
	if err != nil {
		return powerAPIFailed(err.Error())
	}
	if !success(response.Status) {
		return powerAPIFailed(fmt.Sprintf("POST %s answered %d", url, response.Status))
	}
	return onSuccess
}

func success(status int) bool { return status >= 200 && status < 300 }

func powerAPIFailed(detail string) mapper.OperationOutcome {
	return mapper.OperationRefused("power API: " + detail)
}

func describeOperation(outcome mapper.OperationOutcome) string {
	switch outcome.Tag() {
	case mapper.TagOperationDone:
		return "done (" + outcome.Done() + ")"
	case mapper.TagOperationTryAgain:
		return "try again (" + outcome.TryAgain() + ")"
	case mapper.TagOperationRefused:
		return "refused (" + outcome.Refused() + ")"
	}
	return "unsupported"
}

// percentEncode percent-encodes every byte but the unreserved characters of RFC 3986
// (letters, digits, - . _ ~), so that a host name such as fe80::1 is one path segment.
func percentEncode(text string) string {
	var encoded strings.Builder
	for _, b := range []byte(text) {
		switch {
		case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9',
			b == '-', b == '.', b == '_', b == '~':
			encoded.WriteByte(b)
		default:
			fmt.Fprintf(&encoded, "%%%02X", b)
		}
	}
	return encoded.String()
}
